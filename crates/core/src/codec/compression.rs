//! zstd, with one compression and one decompression context per thread: a context is large to
//! set up and small to reuse.

use std::cell::RefCell;

use zstd::bulk::{Compressor, Decompressor};

/// zstd's default level: on session JSON it stores a third or less of the plain size, and
/// compresses 10 KB in a few tens of microseconds.
const LEVEL: i32 = 3;

thread_local! {
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Why compressed bytes cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inflation {
    /// Not a zstd frame that says how long its contents are, or damaged.
    Damaged(String),
    /// The frame holds more than the caller reads.
    TooLarge(u64),
}

/// One zstd frame of `data`, which records its length.
pub fn compress(data: &[u8]) -> Result<Vec<u8>, String> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressor = match slot.as_mut() {
            Some(compressor) => compressor,
            None => slot.insert(Compressor::new(LEVEL).map_err(|e| e.to_string())?),
        };
        compressor.compress(data).map_err(|e| e.to_string())
    })
}

/// The contents of one zstd frame, if they are at most `limit` bytes. The frame's own length
/// field decides what is allocated, and is checked against what comes out: a small hostile
/// value cannot make the store allocate or write more than `limit`.
pub fn decompress(frame: &[u8], limit: u64) -> Result<Vec<u8>, Inflation> {
    let declared = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(len)) => len,
        Ok(None) => return Err(Inflation::Damaged("no content size".into())),
        Err(_) => return Err(Inflation::Damaged("not a zstd frame".into())),
    };
    if declared > limit {
        return Err(Inflation::TooLarge(declared));
    }
    let mut out = Vec::with_capacity(declared as usize);
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decompressor = match slot.as_mut() {
            Some(decompressor) => decompressor,
            None => {
                slot.insert(Decompressor::new().map_err(|e| Inflation::Damaged(e.to_string()))?)
            }
        };
        decompressor
            .decompress_to_buffer(frame, &mut out)
            .map_err(|e| Inflation::Damaged(e.to_string()))
    })?;
    if out.len() as u64 != declared {
        return Err(Inflation::Damaged("shorter than its frame says".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_shrinks_repetitive_text() {
        let text = r#"{"cookie":"value","path":"/"},"#.repeat(500);
        let frame = compress(text.as_bytes()).unwrap();
        assert!(frame.len() * 10 < text.len(), "{} bytes", frame.len());
        assert_eq!(decompress(&frame, 1 << 20).unwrap(), text.as_bytes());
    }

    #[test]
    fn a_frame_longer_than_the_limit_is_refused_before_it_is_inflated() {
        let bomb = compress(&vec![b'a'; 10 << 20]).unwrap();
        assert!(bomb.len() < 2048);
        assert_eq!(
            decompress(&bomb, 1 << 20),
            Err(Inflation::TooLarge(10 << 20))
        );
    }

    #[test]
    fn damaged_frames_are_refused() {
        let mut frame = compress(&b"x".repeat(1000)).unwrap();
        assert!(matches!(
            decompress(b"not zstd", 100),
            Err(Inflation::Damaged(_))
        ));
        let last = frame.len() - 1;
        frame.truncate(last);
        assert!(matches!(
            decompress(&frame, 1 << 20),
            Err(Inflation::Damaged(_))
        ));
        assert!(matches!(
            decompress(&[], 1 << 20),
            Err(Inflation::Damaged(_))
        ));
    }
}
