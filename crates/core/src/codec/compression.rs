//! zstd, with one compression and one decompression context per thread: a context is large to
//! set up and small to reuse.

use std::cell::RefCell;
use std::io::Read;

use zstd::bulk::{Compressor, Decompressor};

/// zstd's first fast level. On the bench's sessions it stores a quarter or less of the JSON
/// (random cookie values do not compress) and adds about 12 µs to a 10 KB write; level 1 saves
/// a fifth more bytes for 20 µs, at the limit of what a write may take for it.
const LEVEL: i32 = -1;

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

/// Frames that say they hold up to this much are inflated into a buffer of exactly that size;
/// larger ones into one that grows with what actually comes out.
const ALLOCATED_AT_ONCE: u64 = 1 << 20;

/// The contents of one zstd frame, if they are at most `limit` bytes. A frame must say how long
/// its contents are, and is refused at once when that is over the limit, and when what comes
/// out differs. Memory follows what comes out, never what a frame claims: a small hostile value
/// cannot make the store allocate more than it inflates, nor inflate more than `limit`.
pub fn decompress(frame: &[u8], limit: u64) -> Result<Vec<u8>, Inflation> {
    let declared = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(len)) => len,
        Ok(None) => return Err(Inflation::Damaged("no content size".into())),
        Err(_) => return Err(Inflation::Damaged("not a zstd frame".into())),
    };
    if declared > limit {
        return Err(Inflation::TooLarge(declared));
    }
    let damaged = |e: std::io::Error| Inflation::Damaged(e.to_string());
    let out = if declared <= ALLOCATED_AT_ONCE {
        let mut out = Vec::with_capacity(declared as usize);
        DECOMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            let decompressor = match slot.as_mut() {
                Some(decompressor) => decompressor,
                None => slot.insert(Decompressor::new().map_err(damaged)?),
            };
            decompressor
                .decompress_to_buffer(frame, &mut out)
                .map_err(damaged)
        })?;
        out
    } else {
        let mut out = Vec::new();
        let decoder = zstd::stream::read::Decoder::with_buffer(frame).map_err(damaged)?;
        decoder
            .take(declared + 1)
            .read_to_end(&mut out)
            .map_err(damaged)?;
        out
    };
    if out.len() as u64 != declared {
        return Err(Inflation::Damaged(
            "longer or shorter than its frame says".into(),
        ));
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
    fn a_frame_claiming_more_than_it_holds_allocates_only_what_comes_out() {
        // A frame of a few bytes whose header claims 2^46 bytes, under a limit that allows it:
        // allocating what it claims would abort the process.
        let mut lying = compress(b"tiny").unwrap();
        let mut real = compress(&vec![b'a'; 3 << 20]).unwrap();
        assert!(matches!(decompress(&lying, 1 << 50), Ok(ref out) if out == b"tiny"));
        // A frame of 3 MiB that claims 1 GiB: its content size field (4 bytes, after the
        // descriptor and the window byte of a frame that is not single-segment) changed.
        let descriptor = real[4];
        assert_eq!(
            (descriptor >> 6, descriptor & 0x23),
            (2, 0),
            "{descriptor:#x}"
        );
        real[6..10].copy_from_slice(&(1u32 << 30).to_le_bytes());
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&real).ok(),
            Some(Some(1 << 30))
        );
        assert!(matches!(
            decompress(&real, 1 << 50),
            Err(Inflation::Damaged(_))
        ));
        lying.truncate(4);
        assert!(matches!(
            decompress(&lying, 1 << 50),
            Err(Inflation::Damaged(_))
        ));
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
