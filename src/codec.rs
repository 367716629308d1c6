//! How a store encodes what it writes, as JavaScript gives it: the options resolved by
//! `lib/stores/options.js`, keys as raw bytes.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use session_core::codec::encryption::Keys;
use session_core::codec::{Codec, Compression};
use session_core::StoreError;

#[napi(object)]
pub struct CodecOptions {
    /// `zstd` or `none` (the default).
    pub compression: Option<String>,
    /// 32 bytes each: the first encrypts, every one decrypts.
    pub keys: Option<Vec<Buffer>>,
    /// `false` writes values unencrypted while the keys still read encrypted ones; the default
    /// encrypts when there are keys.
    pub encrypt: Option<bool>,
}

/// The core's codec for these options; plain JSON when there are none.
pub fn codec_of(options: Option<CodecOptions>) -> Result<Codec, StoreError> {
    let Some(CodecOptions {
        compression,
        keys,
        encrypt,
    }) = options
    else {
        return Ok(Codec::plain());
    };
    let compression = match compression.as_deref() {
        None | Some("none") => Compression::None,
        Some("zstd") => Compression::Zstd,
        Some(other) => {
            let why = format!("compression must be 'zstd' or 'none', got '{other}'");
            return Err(StoreError::InvalidCodec(why));
        }
    };
    let keys = Keys::new(&keys.unwrap_or_default())
        .map_err(|e| StoreError::InvalidCodec(e.to_string()))?;
    let codec = Codec::new(compression, keys);
    Ok(match encrypt {
        Some(false) => codec.without_encryption(),
        _ => codec,
    })
}
