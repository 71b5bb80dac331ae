use super::slot::Pending;
use super::*;

/// A warm slot stays small: the fetch and failure state is boxed.
#[test]
#[cfg(target_pointer_width = "64")]
fn a_slot_is_small() {
    eprintln!(
        "Slot {} B, CacheKey {} B, AccessToken {} B, Pending {} B",
        std::mem::size_of::<Slot>(),
        std::mem::size_of::<CacheKey>(),
        std::mem::size_of::<AccessToken>(),
        std::mem::size_of::<Pending>()
    );
    assert!(std::mem::size_of::<Slot>() <= 64);
}
