//! Range-checked numbers from the command line and from JSON flags: one
//! table of bounds ([`limits`]) and one wording for every error, so that
//! `--timeout 1e30`, `--rate 1e-300` or `--generation-config '{"timeout":
//! 1e30}'` are refused with a message naming the flag instead of reaching a
//! `Duration` conversion, an allocation or a loop bound.
//!
//! A [`Float`] or [`Int`] is a closed interval with a unit. On the command
//! line it is the flag's value parser (the binary's `value_parser =
//! limits::TIMEOUT_S.parser()`), so the usage error reads `invalid value '1e30' for
//! '--timeout <TIMEOUT>': must be a finite number of seconds between 0.001
//! and 86400 (got 1e30)` and exits 2; in JSON it is
//! [`Float::json`]/[`Int::json`] with the flag and key as the name.

use serde_json::Value;

/// A closed interval of finite `f64`s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Float {
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
    /// What the number counts, for the message ("seconds"; "" for none).
    pub unit: &'static str,
}

/// A closed interval of whole numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int {
    /// Smallest accepted value.
    pub min: u64,
    /// Largest accepted value.
    pub max: u64,
    /// What the number counts, for the message ("requests"; "" for none).
    pub unit: &'static str,
}

/// ` of UNIT`, or nothing for a unitless number.
fn of(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" of {unit}")
    }
}

impl Float {
    /// The message for a value outside the range (`got` as the user wrote it).
    pub fn message(&self, got: &str) -> String {
        format!(
            "must be a finite number{} between {} and {} (got {got})",
            of(self.unit),
            self.min,
            self.max
        )
    }

    /// `v` if it is finite and inside the range.
    pub fn check(&self, v: f64) -> Result<f64, String> {
        if v.is_finite() && v >= self.min && v <= self.max {
            Ok(v)
        } else {
            Err(self.message(&v.to_string()))
        }
    }

    /// Parses a command-line value (a flag's value parser).
    pub fn parse(&self, s: &str) -> Result<f64, String> {
        match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= self.min && v <= self.max => Ok(v),
            _ => Err(self.message(s)),
        }
    }

    /// [`Float::parse`] as a flag's value parser: `value_parser = L::TIMEOUT_S.parser()`.
    pub fn parser(self) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
        move |s: &str| self.parse(s)
    }

    /// A number from a JSON flag; errors start with `name` (e.g.
    /// `--generation-config timeout`).
    pub fn json(&self, name: &str, v: &Value) -> Result<f64, String> {
        v.as_f64()
            .and_then(|f| self.check(f).ok())
            .ok_or_else(|| format!("{name}: {}", self.message(&v.to_string())))
    }
}

impl Int {
    /// The message for a value outside the range (`got` as the user wrote it).
    pub fn message(&self, got: &str) -> String {
        format!(
            "must be a whole number{} between {} and {} (got {got})",
            of(self.unit),
            self.min,
            self.max
        )
    }

    /// `v` if it is inside the range.
    pub fn check(&self, v: u64) -> Result<u64, String> {
        if (self.min..=self.max).contains(&v) {
            Ok(v)
        } else {
            Err(self.message(&v.to_string()))
        }
    }

    /// Parses a command-line value into the flag's type (a flag's value
    /// parser). `max` must fit `T`.
    pub fn parse<T: TryFrom<u64>>(&self, s: &str) -> Result<T, String> {
        s.trim()
            .parse::<u64>()
            .ok()
            .filter(|v| (self.min..=self.max).contains(v))
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| self.message(s))
    }

    /// [`Int::parse`] as a flag's value parser: `value_parser = L::RETRIES.parser::<u32>()`.
    pub fn parser<T: TryFrom<u64>>(
        self,
    ) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
        move |s: &str| self.parse::<T>(s)
    }

    /// A whole number from a JSON flag; errors start with `name`.
    pub fn json(&self, name: &str, v: &Value) -> Result<u64, String> {
        v.as_u64()
            .and_then(|n| self.check(n).ok())
            .ok_or_else(|| format!("{name}: {}", self.message(&v.to_string())))
    }
}

/// The bounds of every numeric flag (README: "Numeric flags"). Upper bounds
/// keep each value clear of `Duration` overflow, of allocations sized from
/// it and of loops counted by it, while staying far above any real use.
pub mod limits {
    use super::{Float, Int};

    /// Per-request timeout (`--timeout`, `--generation-config timeout`):
    /// 1 ms to one day.
    pub const TIMEOUT_S: Float = Float {
        min: 0.001,
        max: 86_400.0,
        unit: "seconds",
    };
    /// Retries after the first attempt (`--retries`, `--generation-config retries`).
    pub const RETRIES: Int = Int {
        min: 0,
        max: 100,
        unit: "retries",
    };
    /// Requests in flight (`bench eval --concurrency`, `bench perf
    /// --parallel`, `--max-concurrency`).
    pub const CONCURRENCY: Int = Int {
        min: 1,
        max: 100_000,
        unit: "requests",
    };
    /// Few-shot examples per item (`--dataset-args NAME.few_shot`).
    pub const FEW_SHOT: Int = Int {
        min: 0,
        max: 100,
        unit: "examples",
    };
    /// Samples per item (`bench eval --repeats`, `--dataset-args NAME.repeats`,
    /// `--generation-config n`): each repeat is one request.
    pub const REPEATS: Int = Int {
        min: 1,
        max: 10_000,
        unit: "repeats",
    };
    /// Requests per perf level (`--number`), also the most arrivals a
    /// `--rate` × `--duration` level may schedule.
    pub const REQUESTS: Int = Int {
        min: 1,
        max: 10_000_000,
        unit: "requests",
    };
    /// Warmup requests per perf level (`--warmup`).
    pub const WARMUP: Int = Int {
        min: 0,
        max: 1_000_000,
        unit: "requests",
    };
    /// Open-loop arrival rate (`--rate`): from one request per 1000 s
    /// (below that the arrival schedule's offsets overflow a `Duration`
    /// long before a run could end) to a million per second.
    pub const RATE: Float = Float {
        min: 0.001,
        max: 1_000_000.0,
        unit: "requests per second",
    };
    /// Gamma shape of inter-arrival times (`--burstiness`).
    pub const BURSTINESS: Float = Float {
        min: 0.001,
        max: 1000.0,
        unit: "",
    };
    /// A perf level's length (`--duration`): 1 ms to 7 days.
    pub const DURATION_S: Float = Float {
        min: 0.001,
        max: 604_800.0,
        unit: "seconds",
    };
    /// Any `u64` (`--seed`).
    pub const SEED: Int = Int {
        min: 0,
        max: u64::MAX,
        unit: "",
    };
    /// Sampling temperature (`bench perf --temperature`); servers apply
    /// their own, usually tighter, limit.
    pub const TEMPERATURE: Float = Float {
        min: 0.0,
        max: 100.0,
        unit: "",
    };
    /// `--max-tokens`.
    pub const MAX_TOKENS: Int = Int {
        min: 1,
        max: 10_000_000,
        unit: "tokens",
    };
    /// `--min-tokens` (0: none).
    pub const MIN_TOKENS: Int = Int {
        min: 0,
        max: 10_000_000,
        unit: "tokens",
    };
    /// Hard cap on a random prompt, shared prefix included, in tokens (2^20,
    /// beyond every served context today); a tokenizer's
    /// `model_max_length` lowers it.
    pub const MAX_PROMPT_TOKENS: u64 = 1 << 20;
    /// `--min-prompt-length` / `--max-prompt-length`.
    pub const PROMPT_LENGTH: Int = Int {
        min: 1,
        max: MAX_PROMPT_TOKENS,
        unit: "tokens",
    };
    /// `--prefix-length`.
    pub const PREFIX_LENGTH: Int = Int {
        min: 0,
        max: MAX_PROMPT_TOKENS,
        unit: "tokens",
    };
    /// A goodput objective (`--slo ttft=..`), in milliseconds: up to one day.
    pub const SLO_MS: Float = Float {
        min: 0.0,
        max: 86_400_000.0,
        unit: "milliseconds",
    };
    /// A TCP port (`bench mock-server --port`; 0 picks a free one).
    pub const PORT: Int = Int {
        min: 0,
        max: 65_535,
        unit: "",
    };
    /// Mock server delays (`--ttft-ms`, `--itl-ms`): up to one hour.
    pub const DELAY_MS: Float = Float {
        min: 0.0,
        max: 3_600_000.0,
        unit: "milliseconds",
    };
    /// Mock server response length (`--output-tokens`; 0 is an empty answer).
    pub const OUTPUT_TOKENS: Int = Int {
        min: 0,
        max: 1_000_000,
        unit: "tokens",
    };
    /// Mock server tokens per chunk (`--tokens-per-chunk`).
    pub const TOKENS_PER_CHUNK: Int = Int {
        min: 1,
        max: 1_000_000,
        unit: "tokens",
    };
    /// Mock server worker threads (`--threads`).
    pub const THREADS: Int = Int {
        min: 1,
        max: 1024,
        unit: "threads",
    };
    /// `bench compare --threshold`: accuracy points or percent.
    pub const THRESHOLD: Float = Float {
        min: 0.0,
        max: 10_000.0,
        unit: "points or percent",
    };
    /// `bench report --index --max-comparisons`.
    pub const MAX_COMPARISONS: Int = Int {
        min: 0,
        max: 1_000_000,
        unit: "pages",
    };
}

#[cfg(test)]
mod tests {
    use super::limits::*;
    use serde_json::json;

    #[test]
    fn floats_refuse_non_finite_and_out_of_range() {
        assert_eq!(TIMEOUT_S.parse("2.5"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "1e300", "1e30", "x", ""] {
            let e = TIMEOUT_S.parse(bad).unwrap_err();
            assert_eq!(
                e,
                format!("must be a finite number of seconds between 0.001 and 86400 (got {bad})")
            );
        }
        assert!(TIMEOUT_S.check(f64::NAN).is_err());
    }

    #[test]
    fn ints_refuse_signs_fractions_and_overflow() {
        assert_eq!(CONCURRENCY.parse::<usize>("8"), Ok(8));
        for bad in ["0", "-1", "NaN", "inf", "1e300", "1.5", "100001"] {
            let e = CONCURRENCY.parse::<usize>(bad).unwrap_err();
            assert!(e.contains("between 1 and 100000") && e.contains(bad), "{e}");
        }
        assert_eq!(PORT.parse::<u16>("65535"), Ok(65535));
        assert!(PORT.parse::<u16>("65536").is_err());
        assert_eq!(SEED.parse::<u64>(&u64::MAX.to_string()), Ok(u64::MAX));
    }

    #[test]
    fn json_numbers_name_the_key() {
        let e = TIMEOUT_S
            .json("--generation-config timeout", &json!(1e30))
            .unwrap_err();
        assert!(e.starts_with("--generation-config timeout: must be"), "{e}");
        assert!(RETRIES.json("r", &json!(-1)).is_err());
        assert!(RETRIES.json("r", &json!(1.5)).is_err());
        assert_eq!(RETRIES.json("r", &json!(3)), Ok(3));
    }
}
