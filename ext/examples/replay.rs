//! Replay a command file through the engine without Python, for profiling.
//!
//! ```text
//! cargo build --profile profiling --example replay
//! SPEC=1,1,2,10000,1,1,100000000,100000000,500,1,5,100000 SETUP=setup.bin \
//!     target/profiling/examples/replay commands.bin [REPEATS]
//! ```
//!
//! Files are raw `core.batch.command_dtype()` rows (`array.tofile(path)`), e.g.
//! from `bench.workload.build(n, seed)`: its `setup` commands in `SETUP`
//! (applied before the timer) and its `commands` as the argument.
//! `SPEC` is the instrument: id, base, quote, base_per_lot,
//! quote_per_tick_lot, min_quantity, max_quantity, max_price, price_band_bps,
//! maker_fee_bps, taker_fee_bps, reference_price. `BY_KIND=1` times every
//! command with the TSC and prints the cost per kind of command.

use std::time::Instant;

use _native::{Command, Engine, InstrumentSpec};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: replay COMMANDS.bin [REPEATS]");
        std::process::exit(2);
    };
    let repeats: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let commands = match std::fs::read(path) {
        Ok(bytes) => parse(&bytes),
        Err(err) => {
            eprintln!("cannot read {path}: {err}");
            std::process::exit(1);
        }
    };
    let setup: Vec<Command> =
        std::env::var("SETUP").ok().and_then(|p| std::fs::read(p).ok()).map(|b| parse(&b)).unwrap_or_default();
    let spec = std::env::var("SPEC").ok().and_then(|text| spec_from(&text)).unwrap_or(InstrumentSpec {
        id: 1,
        base: 1,
        quote: 2,
        base_per_lot: 10_000,
        quote_per_tick_lot: 1,
        min_quantity: 1,
        max_quantity: 100_000_000,
        max_price: 100_000_000,
        price_band_bps: 500,
        maker_fee_bps: 1,
        taker_fee_bps: 5,
        reference_price: 100_000,
    });
    if std::env::var_os("BY_KIND").is_some() {
        by_kind(&setup, &commands, spec);
        return;
    }
    // One output buffer for every run, so that only the first pays its page faults.
    let mut events = Vec::with_capacity(commands.len() * 3);
    for _ in 0..repeats {
        let mut engine = fresh(spec, &setup);
        events.clear();
        std::mem::swap(&mut events, &mut engine.out.events);
        engine.out.set_streaming(true);
        let start = Instant::now();
        engine.process_batch(commands.len(), |i| commands[i], None);
        engine.out.finish_streaming();
        let dt = start.elapsed().as_secs_f64();
        std::mem::swap(&mut events, &mut engine.out.events);
        println!(
            "{} commands, {} events in {:.3}s: {:.1} M commands/s",
            commands.len(),
            events.len(),
            dt,
            commands.len() as f64 / dt / 1e6
        );
    }
}

fn fresh(spec: InstrumentSpec, setup: &[Command]) -> Engine {
    let mut engine = Engine::new();
    if let Err(err) = engine.add_instrument(spec) {
        eprintln!("{err}");
        std::process::exit(1);
    }
    for c in setup {
        engine.process(c);
    }
    engine.out.events.clear();
    engine
}

fn spec_from(text: &str) -> Option<InstrumentSpec> {
    let v: Vec<i64> = text.split(',').map(|x| x.trim().parse().ok()).collect::<Option<Vec<_>>>()?;
    (v.len() == 12).then(|| InstrumentSpec {
        id: v[0],
        base: v[1],
        quote: v[2],
        base_per_lot: v[3],
        quote_per_tick_lot: v[4],
        min_quantity: v[5],
        max_quantity: v[6],
        max_price: v[7],
        price_band_bps: v[8],
        maker_fee_bps: v[9],
        taker_fee_bps: v[10],
        reference_price: v[11],
    })
}

fn parse(bytes: &[u8]) -> Vec<Command> {
    bytes
        .chunks_exact(128)
        .map(|row| {
            let mut f = [0i64; 16];
            for (i, word) in row.chunks_exact(8).enumerate() {
                f[i] = i64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            }
            Command::from_fields(f)
        })
        .collect()
}

/// Time each command with the TSC and sum by kind (passive, crossing, market, cancel).
fn by_kind(setup: &[Command], commands: &[Command], spec: InstrumentSpec) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::_rdtsc;
        let mut buffer: Vec<_native::Event> = Vec::with_capacity(commands.len() * 3);
        for _ in 0..3 {
            let mut engine = fresh(spec, setup);
            buffer.clear();
            std::mem::swap(&mut buffer, &mut engine.out.events);
            let mut sums = [(0u64, 0u64); 6];
            for c in commands {
                let before = engine.out.events.len();
                // SAFETY: RDTSC only reads the time-stamp counter.
                let t0 = unsafe { _rdtsc() };
                engine.process(c);
                // SAFETY: as above.
                let t1 = unsafe { _rdtsc() };
                let evs = &engine.out.events[before..];
                let class = match c.kind {
                    1 if c.order_type == 1 => 3,
                    1 if evs.iter().any(|e| e.kind == 3) => 2,
                    1 => 1,
                    2 => 4,
                    _ => 5,
                };
                sums[class].0 += t1 - t0;
                sums[class].1 += 1;
            }
            std::mem::swap(&mut buffer, &mut engine.out.events);
            let names = ["", "passive", "crossing", "market", "cancel", "other"];
            let total: u64 = sums.iter().map(|s| s.0).sum();
            for (i, name) in names.iter().enumerate().skip(1) {
                let (t, n) = sums[i];
                if n > 0 {
                    println!(
                        "{name:>9}: {n:>8} commands, {:>6.1} ticks each, {:>5.1}% of time",
                        t as f64 / n as f64,
                        100.0 * t as f64 / total as f64
                    );
                }
            }
            println!("    total: {:.1} ticks per command", total as f64 / commands.len() as f64);
        }
    }
}
