//! The monitor's memory footprint. A monitor is the `berth` command forked: after the start
//! it still has resident the pages of all the code and read-only data the command and the
//! in-process create touched (megabytes of berth's text, private as long as no other berth
//! process maps them), and the stack depth of that create. Its loop needs a small part of
//! either. So once the container runs, the monitor hands back to the kernel
//!
//! - every page of a read-only, file-backed mapping that holds no page of its own: those
//!   pages are the file's, so the kernel fetches them again from the page cache (no I/O)
//!   when the loop touches one. A mapping with anonymous pages (RELRO: relocated at load
//!   time, then made read-only) is left alone, since dropping its pages would bring back
//!   the file's unrelocated bytes;
//! - the stack below the current frame (with a margin), zero-filled if ever used again.
//!
//! Measured (bench/front.sh): private memory 5.9 MiB -> see bench/README.md.

use std::ops::Range;

use crate::sys;

/// Margin kept below the caller's frame: the frames the loop calls into reuse it (none
/// keeps a large buffer on the stack).
const STACK_MARGIN: usize = 16 * 1024;

/// Hands back what the monitor's loop does not need (see the module's text). Best effort:
/// a monitor that cannot read its smaps keeps its pages.
pub fn shrink() {
    sys::trim_heap();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for range in droppable_file_ranges(&smaps) {
        // SAFETY: the range is a private, read-only mapping of a file without anonymous
        // pages (checked above, and nothing in this single-threaded monitor writes-protects
        // or remaps it meanwhile): every page reads again as the file says.
        let _ = unsafe { sys::drop_pages(range) };
    }
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    if let Some(range) = stack_mapping(&smaps)
        .and_then(|stack| stack_below(stack, sp, STACK_MARGIN, rustix::param::page_size()))
    {
        // SAFETY: the range lies more than STACK_MARGIN below a local of this frame: no
        // live frame is there, and a frame made there later starts on zeroed pages.
        let _ = unsafe { sys::drop_pages(range) };
    }
}

/// Address ranges of `smaps` (the text of /proc/self/smaps) whose pages can be dropped
/// without changing what the process reads there.
pub fn droppable_file_ranges(smaps: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut current: Option<(Range<usize>, bool)> = None;
    for line in smaps.lines() {
        if let Some(mapping) = parse_mapping_line(line) {
            if let Some((range, true)) = current.take() {
                out.push(range);
            }
            current = Some(mapping);
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            // a page of its own (copy-on-write): the file no longer says what is there
            if kb.trim().trim_end_matches("kB").trim() != "0"
                && let Some((_, ok)) = current.as_mut()
            {
                *ok = false;
            }
        }
    }
    if let Some((range, true)) = current {
        out.push(range);
    }
    out
}

/// A mapping's header line ("start-end perms offset dev inode path"): its range, and
/// whether it is a candidate (private, not writable, backed by a file).
fn parse_mapping_line(line: &str) -> Option<(Range<usize>, bool)> {
    let mut fields = line.split_ascii_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?.as_bytes();
    if perms.len() != 4 {
        return None;
    }
    let _offset = fields.next()?;
    let _dev = fields.next()?;
    let inode: u64 = fields.next()?.parse().ok()?;
    let path = fields.next().unwrap_or("");
    let candidate = perms[0] == b'r' && perms[1] == b'-' && perms[3] == b'p' && inode != 0;
    // "/path (deleted)": the file is gone from its directory but its pages still back us
    Some((start..end, candidate && path.starts_with('/')))
}

/// The part of the stack mapping `stack` that lies more than `margin` bytes below `sp`,
/// page-aligned; None when there is nothing to drop.
pub fn stack_below(
    stack: Range<usize>,
    sp: usize,
    margin: usize,
    page: usize,
) -> Option<Range<usize>> {
    let top = sp.checked_sub(margin)? & !(page - 1);
    (top > stack.start && top <= stack.end).then_some(stack.start..top)
}

/// The `[stack]` mapping's range in `maps` (the text of /proc/self/maps or smaps).
pub fn stack_mapping(maps: &str) -> Option<Range<usize>> {
    maps.lines().find(|l| l.ends_with("[stack]")).and_then(|l| {
        let (start, end) = l.split_ascii_whitespace().next()?.split_once('-')?;
        Some(usize::from_str_radix(start, 16).ok()?..usize::from_str_radix(end, 16).ok()?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55eed6fe4000-55eed7100000 r--p 00000000 fe:01 1234 /work/target/release/berth
Size:               1136 kB
Anonymous:             0 kB
55eed7100000-55eed7550000 r-xp 0011c000 fe:01 1234 /work/target/release/berth
Anonymous:             0 kB
55eed7550000-55eed75a0000 r--p 0056c000 fe:01 1234 /work/target/release/berth
Anonymous:           308 kB
55eed75a0000-55eed75a2000 rw-p 005bc000 fe:01 1234 /work/target/release/berth
Anonymous:             8 kB
55eed8000000-55eed8100000 rw-p 00000000 00:00 0 [heap]
Anonymous:           272 kB
7f0000000000-7f0000001000 r--s 00000000 00:05 99 /dev/zero
Anonymous:             0 kB
7f0000100000-7f0000200000 r-xp 00000000 fe:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)
Anonymous:             0 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Anonymous:           156 kB
7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
";

    #[test]
    fn read_only_file_mappings_without_own_pages_are_dropped() {
        let ranges = droppable_file_ranges(SMAPS);
        assert_eq!(
            ranges,
            vec![
                0x55eed6fe4000..0x55eed7100000,
                0x55eed7100000..0x55eed7550000,
                0x7f0000100000..0x7f0000200000,
            ]
        );
    }

    #[test]
    fn relro_writable_shared_and_anonymous_mappings_are_kept() {
        let ranges = droppable_file_ranges(SMAPS);
        for kept in [
            0x55eed7550000,
            0x55eed75a0000,
            0x55eed8000000,
            0x7f0000000000,
            0x7ffd00100000,
        ] {
            assert!(
                !ranges.iter().any(|r| r.contains(&kept)),
                "{kept:x} must be kept"
            );
        }
    }

    #[test]
    fn the_stack_is_dropped_only_below_the_margin() {
        let stack = stack_mapping(SMAPS).unwrap();
        assert_eq!(stack, 0x7ffd00000000..0x7ffd00021000);
        let sp = 0x7ffd00020a10;
        assert_eq!(
            stack_below(stack.clone(), sp, 0x4000, 0x1000),
            Some(0x7ffd00000000..0x7ffd0001c000)
        );
        // a margin that reaches past the mapping's start leaves the stack alone
        assert_eq!(stack_below(stack, 0x7ffd00001000, 0x4000, 0x1000), None);
    }
}
