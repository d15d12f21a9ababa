//! Kernel-only code (the bare-metal binary): the boot sequence and global state
//! ([`entry`]), the console on the PL011 ([`console`]), the shell's view of the
//! board ([`platform`]), the link layout of the image ([`layout`]) and the panic
//! handler ([`panic`]).

pub mod console;
pub mod entry;
pub mod layout;
pub mod panic;
pub mod platform;
