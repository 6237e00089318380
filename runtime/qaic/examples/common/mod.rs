// SPDX-License-Identifier: MIT OR Apache-2.0
//! Shared by the device test examples: PASS/FAIL bookkeeping.

use qaic::Error;

/// Counts and prints verdicts, one line each: `PASS name` or `FAIL name - why`.
#[derive(Default)]
pub struct Report {
    /// Failed steps.
    pub failed: u32,
    /// Passed steps.
    pub passed: u32,
}

#[allow(dead_code)] // each example uses its own subset
impl Report {
    /// Passes on `Ok`, fails with the error otherwise.
    pub fn check<T>(&mut self, name: &str, r: qaic::Result<T>) -> Option<T> {
        match r {
            Ok(v) => {
                println!("PASS {name}");
                self.passed += 1;
                Some(v)
            }
            Err(e) => {
                println!("FAIL {name} - {e}");
                self.failed += 1;
                None
            }
        }
    }

    /// Passes when `r` failed with exactly `errno`.
    pub fn expect_errno<T: std::fmt::Debug>(&mut self, name: &str, r: qaic::Result<T>, errno: i32) {
        match r {
            Err(e) if e.errno() == Some(errno) => self.check(name, Ok(())),
            Err(e) => self.check::<()>(
                name,
                Err(Error::Protocol(format!(
                    "expected {:?}, got {e}",
                    qaic::Errno(errno)
                ))),
            ),
            Ok(v) => self.check::<()>(
                name,
                Err(Error::Protocol(format!(
                    "expected {:?}, got Ok({v:?})",
                    qaic::Errno(errno)
                ))),
            ),
        };
    }

    /// Passes when `cond` holds.
    pub fn ensure(&mut self, name: &str, cond: bool, why: impl Into<String>) {
        let r = if cond {
            Ok(())
        } else {
            Err(Error::Protocol(why.into()))
        };
        self.check(name, r);
    }

    /// Prints the closing line and exits non-zero if anything failed.
    pub fn finish(&self) -> ! {
        println!("{} passed, {} failed", self.passed, self.failed);
        std::process::exit(i32::from(self.failed > 0));
    }
}
