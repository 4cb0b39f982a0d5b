//! The safe bindings against libimp: the speculative loop of imp.h driven by hand (prefill, sample, mtp_draft,
//! mtp_verify, reset) emits exactly what `generate` emits, greedy and sampled; the error paths; ownership.
//!
//! Model: models/imp-demo when its config.json exists, else tests/fixtures/qwen35_dense, else the tiny random
//! checkpoint CTest writes (IMP_TINY_MODEL). IMP_SOURCE_DIR names the source tree (default: three folders up).
use imp::{Context, GenerateParams, LogitsMode, Model, SamplingParams, Status, StopReason, Token, Tokenizer};
use std::path::PathBuf;
use std::sync::Arc;

fn source_dir() -> PathBuf {
    match std::env::var("IMP_SOURCE_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.."),
    }
}

fn model_dir() -> PathBuf {
    let src = source_dir();
    let demo = src.join("models/imp-demo");
    let fixture = src.join("tests/fixtures/qwen35_dense");
    if demo.join("config.json").exists() {
        eprintln!("model: {} (the demo model)", demo.display());
        return demo;
    }
    if fixture.join("config.json").exists() {
        eprintln!("model: {} (models/imp-demo/config.json absent: transformers fixture)", fixture.display());
        return fixture;
    }
    let tiny = PathBuf::from(std::env::var("IMP_TINY_MODEL").expect(
        "neither models/imp-demo nor tests/fixtures/qwen35_dense exists; set IMP_TINY_MODEL (ctest does)",
    ));
    eprintln!("model: {} (tiny random checkpoint: neither the demo model nor the fixture is there)", tiny.display());
    tiny
}

fn prompt_for(dir: &PathBuf, n_vocab: usize) -> Vec<Token> {
    if dir.join("tokenizer.json").exists() {
        let tok = Tokenizer::load(dir).unwrap();
        let text = "Once upon a time, a small robot learned to";
        let ids = tok.tokenize(text, false).unwrap();
        assert!(!ids.is_empty());
        assert_eq!(tok.detokenize(&ids, false).unwrap(), text.as_bytes());
        eprintln!("prompt: {:?} -> {} tokens", text, ids.len());
        return ids;
    }
    (0..12).map(|i| ((i * 37 + 11) % n_vocab) as Token).collect()
}

/// The loop of imp.h by hand, stopping where imp_generate stops (eos, max_tokens, context full).
fn by_hand(ctx: &mut Context, prompt: &[Token], k: usize, max_tokens: usize, eos: Token) -> Vec<Token> {
    let mut logits = vec![0f32; ctx.n_vocab()];
    let mut drafts = [0 as Token; imp::MAX_DRAFT];
    let mut got = [0 as Token; imp::MAX_DRAFT + 1];
    let mut emitted = Vec::new();
    let emit = |t: Token, emitted: &mut Vec<Token>| {
        emitted.push(t);
        t != eos && emitted.len() < max_tokens
    };
    ctx.prefill(prompt, LogitsMode::Last, Some(&mut logits)).unwrap();
    let mut last = ctx.sample(&logits).unwrap();
    let mut go = emit(last, &mut emitted);
    while go {
        let room = ctx.n_ctx() - ctx.n_past();
        if room < 1 {
            break;
        }
        let kk = k.min(room - 1);
        if kk > 0 {
            ctx.mtp_draft(last, &mut drafts[..kk], None).unwrap();
            let (n_out, n_acc) = ctx.mtp_verify(&drafts[..kk], &mut got[..kk + 1]).unwrap();
            assert_eq!(n_out, n_acc + 1);
            for &t in &got[..n_out] {
                go = emit(t, &mut emitted);
                if !go {
                    break;
                }
            }
            last = got[n_out - 1];
        } else {
            ctx.decode(last, Some(&mut logits)).unwrap();
            last = ctx.sample(&logits).unwrap();
            go = emit(last, &mut emitted);
        }
    }
    emitted
}

#[test]
fn hand_loop_equals_generate() {
    let dir = model_dir();
    let model = Arc::new(Model::load(&dir).unwrap());
    let info = model.info().unwrap();
    eprintln!("loop: {}, n_vocab {}, layers {}, mtp layers {}, eos {}", model.arch().unwrap(), info.n_vocab,
              info.n_layer, info.n_mtp_layer, info.eos_token);
    assert!(info.n_mtp_layer > 0, "the model has no MTP head");
    let prompt = prompt_for(&dir, model.n_vocab());
    let max_tokens = 24usize;
    let mut cp = imp::ContextParams::default();
    cp.n_ctx = (prompt.len() + max_tokens + imp::MAX_DRAFT + 8) as i32;
    let mut ctx = Context::with_params(&model, &cp).unwrap();

    let greedy = SamplingParams::default();
    let mut sampled = SamplingParams::default();
    sampled.temperature = 0.8;
    sampled.top_k = 40;
    sampled.top_p = 0.95;
    sampled.seed = 7;
    let mut greedy_plain: Option<Vec<Token>> = None;
    for (name, sp, k) in [("greedy", greedy, 0), ("greedy", greedy, 1), ("greedy", greedy, 3), ("sampled", sampled, 2),
                          ("sampled", sampled, 4)] {
        ctx.reset().unwrap();
        ctx.set_sampling(&sp).unwrap();
        let hand = by_hand(&mut ctx, &prompt, k, max_tokens, info.eos_token);
        ctx.reset().unwrap();
        let mut gp = GenerateParams::default();
        gp.max_tokens = max_tokens as i32;
        gp.n_draft = k as i32;
        let mut out = vec![0; max_tokens];
        let mut streamed = Vec::new();
        let done = ctx.generate(&prompt, &gp, &mut out, |t| {
            streamed.push(t);
            true
        }).unwrap();
        out.truncate(done.n_emitted);
        let stats = ctx.stats().unwrap();
        eprintln!("  {} k={}: generate {:?} stop {:?}, verify calls {}", name, k, out, done.stop, stats.n_verify);
        assert_eq!(hand, out, "{} k={}: by-hand loop vs imp_generate", name, k);
        assert_eq!(streamed, out, "{} k={}: callback saw every token", name, k);
        assert!(matches!(done.stop, StopReason::MaxTokens | StopReason::Eos));
        assert_eq!(k == 0, stats.n_verify == 0);
        if name == "greedy" {
            match &greedy_plain {
                None => greedy_plain = Some(out.clone()),
                Some(plain) => assert_eq!(plain, &out, "greedy with MTP k={} vs without", k),
            }
        }
    }

    // The callback stops generation; a panic in it resumes after imp_generate returned.
    ctx.reset().unwrap();
    ctx.set_sampling(&greedy).unwrap();
    let mut gp = GenerateParams::default();
    gp.n_draft = 3;
    gp.max_tokens = max_tokens as i32;
    gp.eos_token = -2;
    let mut calls = 0;
    let done = ctx.generate(&prompt, &gp, &mut [], |_| {
        calls += 1;
        calls < 3
    }).unwrap();
    assert_eq!((done.n_emitted, done.stop), (3, StopReason::Callback));
    ctx.reset().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = ctx.generate(&prompt, &gp, &mut [], |_| panic!("from the callback"));
    }));
    assert!(r.is_err(), "the panic came back out of generate");
    ctx.reset().unwrap();
    assert_eq!(ctx.generate_into(&prompt, &gp, &mut []).unwrap().n_emitted, max_tokens);
}

#[test]
fn errors_carry_status_and_message() {
    let bad = "/nonexistent/imp-model-dir";
    let e = Model::load(bad).err().expect("loading a missing path fails");
    eprintln!("{}", e);
    assert_eq!(e.status, Status::NotFound);
    assert!(e.message.contains(bad), "message names the path: {}", e.message);
    assert!(e.to_string().starts_with("IMP_ERR_NOT_FOUND: "));
    assert_eq!(Tokenizer::load(bad).err().unwrap().status, Status::NotFound);
    assert_eq!(Status::from_code(-15), Status::TokenOutOfRange);
    assert_eq!(Status::TokenOutOfRange.code(), -15);
    assert_eq!(Status::from_code(-1234), Status::Other(-1234));

    let model = Arc::new(Model::load(model_dir()).unwrap());
    let v = model.n_vocab();
    let mut ctx = Context::new(&model).unwrap();
    let mut logits = vec![0f32; v];
    let e = ctx.prefill(&[1, v as Token], LogitsMode::Last, Some(&mut logits)).unwrap_err();
    eprintln!("{}", e);
    assert_eq!(e.status, Status::TokenOutOfRange);
    assert!(!e.message.is_empty());
    assert_eq!(ctx.decode(-1, None).unwrap_err().status, Status::TokenOutOfRange);
    assert_eq!(ctx.n_past(), 0, "the context is unchanged after the errors");
    assert_eq!(ctx.mtp_verify(&[1], &mut [0; 2]).unwrap_err().status, Status::BadState);
    assert_eq!(ctx.prefill(&[1], LogitsMode::Last, Some(&mut [0f32; 1])).unwrap_err().status, Status::BufferTooSmall);
    let mut sp = SamplingParams::default();
    sp.temperature = -1.0;
    assert_eq!(ctx.set_sampling(&sp).unwrap_err().status, Status::InvalidArgument);
    assert_eq!(ctx.mtp_draft(0, &mut [0; imp::MAX_DRAFT + 1], None).unwrap_err().status, Status::InvalidArgument);

    // The context holds the model: dropping the caller's Arc first leaves it working.
    drop(model);
    ctx.prefill(&[1, 2, 3], LogitsMode::Last, Some(&mut logits)).unwrap();
    assert_eq!(ctx.n_past(), 3);
    assert_eq!(Arc::strong_count(ctx.model()), 1);
}

#[test]
fn contexts_move_between_threads_over_one_model() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Model>();
    send_sync::<Tokenizer>();
    send::<Context>();
    let model = Arc::new(Model::load(model_dir()).unwrap());
    let prompt: Vec<Token> = (0..8).map(|i| (i * 5 + 1) as Token % model.n_vocab() as Token).collect();
    let mut gp = GenerateParams::default();
    gp.max_tokens = 8;
    gp.n_draft = 2;
    let run = |ctx: &mut Context| {
        let mut out = vec![0; 8];
        ctx.generate_into(&prompt, &gp, &mut out).unwrap();
        out
    };
    let mut one_thread = imp::ContextParams::default();
    one_thread.n_threads = 1;
    let mut main_ctx = Context::with_params(&model, &one_thread).unwrap();
    let want = run(&mut main_ctx);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let mut ctx = Context::with_params(&model, &one_thread).unwrap();
            let (prompt, gp) = (prompt.clone(), gp);
            std::thread::spawn(move || {
                let mut out = vec![0; 8];
                ctx.generate_into(&prompt, &gp, &mut out).unwrap();
                out
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
}

#[test]
fn library_calls() {
    assert_eq!(imp::version(), "0.1.0");
    assert_eq!(imp::abi_version(), imp::sys::IMP_ABI_VERSION);
    assert_eq!(imp::utf8_incomplete_tail(&[b'a', 0xE2, 0x82]), 2);
    assert_eq!(imp::utf8_incomplete_tail(b"abc"), 0);
    assert_eq!(Status::NotFound.name(), "IMP_ERR_NOT_FOUND");
}
