//! The runtime a `no_std` component built for `wasm32-wasip2` must bring
//! itself, as one macro: [`no_std_runtime!`].
//!
//! Rust std supplies these on wasm32-wasip2, and with them the `wasi:cli`
//! and `wasi:io` imports its panic and print paths need. A component that
//! drops std (so that it imports its contract and nothing else) needs:
//! * a global allocator (dlmalloc, as std uses);
//! * a panic handler: a panic traps, so the host sees a failed call;
//! * `cabi_realloc`, the canonical ABI's allocator export, which the host
//!   uses to hand the component its arguments;
//! * `memcmp`/`bcmp`, which `core` calls for slice and string comparisons
//!   (wasi-libc would provide them; a `no_std` component links no libc).
//!
//! It is a macro, not functions in this crate, so that every symbol is
//! defined in the component's own crate and the linker cannot drop one.

#![no_std]

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use dlmalloc;

/// Defines the allocator, panic handler, `cabi_realloc`, `memcmp` and
/// `bcmp` of a `no_std` wasm32 component. Invoke once, at the crate root,
/// only when `target_arch = "wasm32"`.
#[macro_export]
macro_rules! no_std_runtime {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::dlmalloc::GlobalDlmalloc = $crate::dlmalloc::GlobalDlmalloc;

        /// A panic is a bug or an injected fault: trap. There is nowhere to
        /// print the message (the component imports no output stream).
        #[panic_handler]
        fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
            core::arch::wasm32::unreachable()
        }

        /// The canonical ABI's allocator export.
        ///
        /// # Safety
        /// Called by the host per the canonical ABI: `old_ptr`/`old_len`/
        /// `align` describe an allocation made by this function (or none
        /// when `old_len` is 0), and `align` is a power of two.
        #[no_mangle]
        pub unsafe extern "C" fn cabi_realloc(
            old_ptr: *mut u8,
            old_len: usize,
            align: usize,
            new_len: usize,
        ) -> *mut u8 {
            use alloc::alloc::{alloc, realloc, Layout};
            if new_len == 0 {
                // A zero-sized value needs a well-aligned, never-read pointer.
                return align as *mut u8;
            }
            let ptr = match Layout::from_size_align(old_len.max(new_len), align) {
                // SAFETY: non-zero size; for a realloc the old layout is the
                // one the block was allocated with (same align, `old_len`).
                Ok(_) if old_len == 0 => unsafe {
                    alloc(Layout::from_size_align_unchecked(new_len, align))
                },
                Ok(_) => unsafe {
                    realloc(
                        old_ptr,
                        Layout::from_size_align_unchecked(old_len, align),
                        new_len,
                    )
                },
                Err(_) => core::ptr::null_mut(),
            };
            if ptr.is_null() {
                // Out of memory (or a host that broke the ABI): trap.
                core::arch::wasm32::unreachable();
            }
            ptr
        }

        /// `memcmp` for `core`'s comparisons.
        ///
        /// # Safety
        /// `a` and `b` must be valid for reads of `n` bytes (the C contract).
        #[no_mangle]
        pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            for i in 0..n {
                // SAFETY: the caller guarantees both ranges are readable.
                let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
                if x != y {
                    return i32::from(x) - i32::from(y);
                }
            }
            0
        }

        /// `bcmp` (equality only), which LLVM emits for `==` on byte slices.
        ///
        /// # Safety
        /// As for `memcmp`.
        #[no_mangle]
        pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: same contract as memcmp.
            unsafe { memcmp(a, b, n) }
        }
    };
}
