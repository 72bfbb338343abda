//! nsqd's reading of `nsqd.dat` (`metadata::load`), the JSON list of topics and channels, from a
//! file made of the input; what loads must survive a write and a second read unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsqd::metadata::{file_name, load, Metadata};

fuzz_target!(|data: &[u8]| {
    let dir = nsq_fuzz::scratch_dir();
    std::fs::write(file_name(dir), data).unwrap();
    let Ok(Some(md)) = load(dir, 0) else {
        return;
    };
    let again: Metadata = serde_json::from_slice(&serde_json::to_vec(&md).unwrap()).unwrap();
    assert_eq!(again, md);
});
