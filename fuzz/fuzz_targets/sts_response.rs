#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rolesanywhere_helper::fuzz_entry::sts_response(data);
});
