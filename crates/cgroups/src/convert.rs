//! v1 <-> v2 value conversions, matching current runc and crun.

/// cpu.shares (v1, 2..=262144, default 1024) -> cpu.weight (v2, 1..=10000,
/// default 100). 0 means unset and stays 0.
///
/// This is the 2025 formula (runc PR #4785 via opencontainers/cgroups, crun
/// issue #1721, prompted by kubernetes#131216), not the old linear
/// `1 + (shares - 2) * 9999 / 262142`. The linear one mapped the default
/// 1024 shares to weight 39, so a container with "default" shares got far
/// less CPU than a v2 sibling at the default weight 100. The new one is a
/// quadratic in log2(shares) through (2, 1), (1024, 100) and (262144, 10000):
/// `weight = ceil(10 ^ ((l^2 + 125 l) / 612 - 7/34))`, `l = log2(shares)`.
/// We follow it because podman/docker/kubelet now expect those values.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        s if s >= 262_144 => 10_000,
        s => {
            let l = log2(s as f64);
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            pow10(exponent).ceil() as u64
        }
    }
}

// `f64::log2` and `f64::powf` are calls into libm, and these two were the runtime binary's
// only ones: with them, every command of the runtime loaded libm.so (~0.3 MiB of its
// resident memory and a library load at each start) for a conversion that runs only on
// cgroup v2 with cpu.shares. The series below agree with libm's results for every input of
// `cpu_shares_to_weight` (a test compares all 262141 of them).

/// log2 of a positive, finite `x`: its binary exponent plus log2 of the mantissa in [1, 2),
/// from ln(m) = 2 atanh((m-1)/(m+1)).
fn log2(x: f64) -> f64 {
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let (mut term, mut sum, mut k): (f64, f64, f64) = (t, 0.0, 1.0);
    while term.abs() > 1e-18 {
        sum += term / k;
        term *= t2;
        k += 2.0;
    }
    exponent as f64 + 2.0 * sum / std::f64::consts::LN_2
}

/// 10^x for x >= 0: the integer part by exact multiplication, so that the anchors (whole
/// exponents, e.g. 1024 shares -> 10^2) come out exact as libm's do.
fn pow10(x: f64) -> f64 {
    let whole = x.floor();
    let mut p = 1.0;
    for _ in 0..whole as u32 {
        p *= 10.0;
    }
    p * exp((x - whole) * std::f64::consts::LN_10)
}

/// e^x for moderate `x` (|x| < 700): x = n ln2 + r with |r| <= ln2/2, a Taylor series for
/// e^r, times 2^n.
fn exp(x: f64) -> f64 {
    let n = (x / std::f64::consts::LN_2).round();
    let r = x - n * std::f64::consts::LN_2;
    let (mut term, mut sum, mut k): (f64, f64, f64) = (1.0, 1.0, 1.0);
    while term.abs() > 1e-18 {
        term *= r / k;
        sum += term;
        k += 1.0;
    }
    sum * f64::from_bits(((n as i64 + 1023) as u64) << 52)
}

/// blkio.weight (v1, 10..=1000) -> io.weight (v2, 1..=10000), the linear map
/// runc and crun use when the BFQ scheduler's io.bfq.weight (which takes the
/// v1 range directly) is not available.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// OCI `memory.swap` is memory+swap (the v1 memsw limit); v2's
/// memory.swap.max is swap alone. Returns the value for memory.swap.max:
/// `Some(-1)` = max, `None` = leave unset.
///
/// * limit -1 and swap unset: unlimited memory means unlimited swap too (as
///   on v1, where memsw follows).
/// * swap -1: max. swap 0/unset: unchanged.
/// * otherwise swap - limit, which needs a positive limit and swap >= limit.
pub fn swap_to_v2(swap: i64, limit: i64) -> Result<Option<i64>, String> {
    match (swap, limit) {
        (0, -1) => Ok(Some(-1)),
        (0, _) => Ok(None),
        (-1, _) => Ok(Some(-1)),
        (_, l) if l <= 0 => Err(format!(
            "memory.swap ({swap}) cannot be set without a positive memory.limit on cgroup v2 \
             (swap is memory+swap in the OCI spec)"
        )),
        (s, l) if s < l => Err(format!(
            "memory.swap ({s}) is lower than memory.limit ({l})"
        )),
        (s, l) => Ok(Some(s - l)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_agrees_with_libm_everywhere() {
        for shares in 3..262_144u64 {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            let libm = 10f64.powf(exponent).ceil() as u64;
            assert_eq!(cpu_shares_to_weight(shares), libm, "shares {shares}");
        }
    }

    #[test]
    fn shares_to_weight_fits_the_three_anchor_points() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(1), 1);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 100);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(u64::MAX), 10_000);
        // Values checked against the Go implementation's output.
        assert_eq!(cpu_shares_to_weight(512), 59);
        assert_eq!(cpu_shares_to_weight(2048), 174);
        assert_eq!(cpu_shares_to_weight(4096), 303);
        assert_eq!(cpu_shares_to_weight(100), 17);
        assert_eq!(cpu_shares_to_weight(262_143), 10_000);
    }

    #[test]
    fn shares_to_weight_is_monotonic() {
        let mut prev = 0;
        for s in 2..=262_144u64 {
            let w = cpu_shares_to_weight(s);
            assert!(w >= prev && (1..=10_000).contains(&w), "shares {s} -> {w}");
            prev = w;
        }
    }

    #[test]
    fn blkio_weight() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_to_v2(0, -1), Ok(Some(-1)));
        assert_eq!(swap_to_v2(0, 100), Ok(None));
        assert_eq!(swap_to_v2(-1, 100), Ok(Some(-1)));
        assert_eq!(swap_to_v2(300, 100), Ok(Some(200)));
        assert_eq!(swap_to_v2(100, 100), Ok(Some(0)));
        assert!(
            swap_to_v2(50, 100)
                .unwrap_err()
                .contains("lower than memory.limit (100)")
        );
        assert!(swap_to_v2(50, 0).is_err());
        assert!(swap_to_v2(50, -1).is_err());
    }
}
