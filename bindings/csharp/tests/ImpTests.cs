// ImpTests.cs - the C# bindings against libimp, run under Mono by CTest (bindings/CMakeLists.txt):
//   layout      every struct's Marshal.SizeOf / OffsetOf equals what the C compiler prints (print_layout)
//   loop        the speculative loop driven by hand (imp_prefill, imp_sample, imp_mtp_draft, imp_mtp_verify,
//               imp_context_reset) emits exactly what imp_generate emits, greedy and sampled
//   errors      bad path, token out of range, out-of-order calls, a throwing callback, disposal twice, a model
//               disposed before its context
//   logging     Library.SetLogCallback: failed calls logged at IMP_LOG_ERROR with the status name, the level
//               threshold, a throwing handler, re-entrancy refused, many threads, the delegate surviving a GC,
//               uninstalling
//   tokenizer   round trip when the model directory has a tokenizer.json
//   nuspec      Imp.nuspec is valid XML with the runtimes/<rid>/native/ layout and real paths
// Usage: ImpTests.exe --layout PRINT_LAYOUT --source SRC_DIR --tiny TINY_MODEL_DIR --nuspec FILE --native-dir DIR
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Reflection;
using System.Threading;
using System.Runtime.InteropServices;
using System.Xml;
using Imp;

static class ImpTests
{
    static int failures = 0, checks = 0;
    static Dictionary<string, string> opts = new Dictionary<string, string>();

    static void Check(bool ok, string what)
    {
        ++checks;
        if (!ok)
        {
            ++failures;
            Console.WriteLine("  FAIL: " + what);
        }
    }

    static void Equal<T>(T want, T got, string what)
    {
        Check(EqualityComparer<T>.Default.Equals(want, got), what + ": want " + want + ", got " + got);
    }

    static ImpException Throws(Action a, string what)
    {
        try { a(); }
        catch (ImpException e) { return e; }
        catch (Exception e) { Check(false, what + ": threw " + e.GetType().Name + " instead of ImpException"); return null; }
        Check(false, what + ": no exception");
        return null;
    }

    static bool ThrowsType<E>(Action a) where E : Exception
    {
        try { a(); }
        catch (E) { return true; }
        catch (Exception) { return false; }
        return false;
    }

    static string Opt(string name)
    {
        string v;
        if (!opts.TryGetValue(name, out v)) throw new ArgumentException("missing --" + name);
        return v;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Layout
    // ---------------------------------------------------------------------------------------------------------

    static void TestLayout()
    {
        Console.WriteLine("layout: C structs (" + Opt("layout") + ") against Marshal.SizeOf / OffsetOf");
        ProcessStartInfo psi = new ProcessStartInfo(Opt("layout"));
        psi.UseShellExecute = false;
        psi.RedirectStandardOutput = true;
        Process p = Process.Start(psi);
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Equal(0, p.ExitCode, "print_layout exit code");

        Assembly asm = typeof(NativeMethods).Assembly;
        var seenFields = new Dictionary<string, HashSet<string>>();
        int nStructs = 0, nFields = 0;
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0) continue;
            string[] w = line.Split(' ');
            if (w[0] == "struct")
            {
                Type t = asm.GetType("Imp." + w[1]);
                Check(t != null, "C# declares struct " + w[1]);
                if (t == null) continue;
                ++nStructs;
                seenFields[w[1]] = new HashSet<string>();
                Equal(int.Parse(w[2]), Marshal.SizeOf(t), "sizeof(" + w[1] + ")");
            }
            else if (w[0] == "field")
            {
                string[] sf = w[1].Split('.');
                Type t = asm.GetType("Imp." + sf[0]);
                if (t == null) continue;
                FieldInfo f = t.GetField(sf[1]);
                Check(f != null, "C# declares field " + w[1]);
                if (f == null) continue;
                ++nFields;
                seenFields[sf[0]].Add(sf[1]);
                Equal(int.Parse(w[2]), (int)Marshal.OffsetOf(t, sf[1]), "offsetof(" + w[1] + ")");
                Equal(int.Parse(w[3]), Marshal.SizeOf(f.FieldType), "sizeof(" + w[1] + ")");
            }
            else if (w[0] == "const")
            {
                int v = int.Parse(w[2]);
                if (w[1] == "sizeof_enum")
                {
                    foreach (Type e in new[] { typeof(imp_status), typeof(imp_backend), typeof(imp_logits_mode),
                                               typeof(imp_stop_reason), typeof(imp_log_level) })
                        Equal(v, Marshal.SizeOf(Enum.GetUnderlyingType(e)), "sizeof(" + e.Name + ")");
                }
                else if (w[1] == "IMP_ABI_VERSION") Equal(v, NativeMethods.IMP_ABI_VERSION, w[1]);
                else if (w[1] == "IMP_MAX_DRAFT") Equal(v, NativeMethods.IMP_MAX_DRAFT, w[1]);
                else if (w[1] == "IMP_DRAFT_AUTO") Equal(v, NativeMethods.IMP_DRAFT_AUTO, w[1]);
                else Check(false, "unknown constant " + w[1]);
            }
        }
        // Nothing extra on the C# side: every imp_* struct and each of its fields was in the C listing.
        foreach (Type t in asm.GetTypes())
        {
            if (!t.IsValueType || t.IsEnum || !t.Name.StartsWith("imp_")) continue;
            Check(seenFields.ContainsKey(t.Name), "C has struct " + t.Name);
            if (!seenFields.ContainsKey(t.Name)) continue;
            foreach (FieldInfo f in t.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance))
                Check(seenFields[t.Name].Contains(f.Name), "C has field " + t.Name + "." + f.Name);
        }
        Check(nStructs == 6 && nFields > 30, "layout listing has all structs");
        Console.WriteLine("  " + nStructs + " structs, " + nFields + " fields compared");
        Equal(NativeMethods.IMP_ABI_VERSION, Library.AbiVersion(), "imp_abi_version()");
    }

    // ---------------------------------------------------------------------------------------------------------
    // Model choice and prompt
    // ---------------------------------------------------------------------------------------------------------

    // The demo model once it is in the tree, else the transformers fixture, else the tiny random checkpoint that
    // CTest wrote (bindings_tiny_model).
    static string ChooseModel()
    {
        string src = Opt("source");
        string demo = Path.Combine(src, "models/imp-demo");
        string fixture = Path.Combine(src, "tests/fixtures/qwen35_dense");
        if (File.Exists(Path.Combine(demo, "config.json")))
        {
            Console.WriteLine("model: " + demo + " (the demo model)");
            return demo;
        }
        if (File.Exists(Path.Combine(fixture, "config.json")))
        {
            Console.WriteLine("model: " + fixture + " (models/imp-demo/config.json absent: transformers fixture)");
            return fixture;
        }
        Console.WriteLine("model: " + Opt("tiny") + " (neither models/imp-demo nor tests/fixtures/qwen35_dense: " +
                          "tiny random checkpoint)");
        return Opt("tiny");
    }

    static int[] MakePrompt(string modelDir, int nVocab)
    {
        if (File.Exists(Path.Combine(modelDir, "tokenizer.json")))
        {
            using (Tokenizer tok = Tokenizer.Load(modelDir))
            {
                string text = "Once upon a time, a small robot learned to";
                int[] ids = tok.Tokenize(text, false);
                Console.WriteLine("prompt: \"" + text + "\" -> " + ids.Length + " tokens");
                Equal(text, tok.Detokenize(ids, false), "detokenize(tokenize(text))");
                Check(ids.Length > 0, "prompt has tokens");
                return ids;
            }
        }
        int[] p = new int[12];
        for (int i = 0; i < p.Length; ++i) p[i] = (i * 37 + 11) % nVocab;
        Console.WriteLine("prompt: 12 fixed ids (no tokenizer.json)");
        return p;
    }

    // ---------------------------------------------------------------------------------------------------------
    // The loop of imp.h by hand, stopping where imp_generate stops (eos, max_tokens, context full)
    // ---------------------------------------------------------------------------------------------------------

    static List<int> ByHand(Context ctx, int[] prompt, int k, int maxTokens, int eos)
    {
        float[] logits = new float[ctx.NVocab];
        int[] drafts = new int[NativeMethods.IMP_MAX_DRAFT];
        int[] got = new int[NativeMethods.IMP_MAX_DRAFT + 1];
        List<int> emitted = new List<int>();
        Func<int, bool> emit = delegate (int t)
        {
            emitted.Add(t);
            return t != eos && emitted.Count < maxTokens;
        };
        ctx.Prefill(prompt, imp_logits_mode.IMP_LOGITS_LAST, logits);
        int last = ctx.Sample(logits);
        bool go = emit(last);
        while (go)
        {
            int room = ctx.NCtx - ctx.NPast;
            if (room < 1) break;
            int kk = Math.Min(k, room - 1);
            if (kk > 0)
            {
                int nAccepted;
                ctx.MtpDraft(last, kk, drafts, null);
                int nOut = ctx.MtpVerify(drafts, kk, got, out nAccepted);
                Equal(nAccepted + 1, nOut, "n_out = n_accepted + 1");
                for (int i = 0; i < nOut && go; ++i) go = emit(got[i]);
                last = got[nOut - 1];
            }
            else
            {
                ctx.Decode(last, logits);
                last = ctx.Sample(logits);
                go = emit(last);
            }
        }
        return emitted;
    }

    static string Show(IList<int> t)
    {
        string[] s = new string[t.Count];
        for (int i = 0; i < t.Count; ++i) s[i] = t[i].ToString();
        return "[" + string.Join(" ", s) + "]";
    }

    static void TestLoop(Model model, string modelDir)
    {
        int nVocab = model.NVocab;
        imp_model_info info = model.Info;
        Console.WriteLine("loop: " + model.Arch + ", n_vocab " + nVocab + ", layers " + info.n_layer + ", mtp layers " +
                          info.n_mtp_layer + ", eos " + info.eos_token);
        Check(info.n_mtp_layer > 0, "the model has an MTP head");
        int[] prompt = MakePrompt(modelDir, nVocab);
        const int maxTokens = 24;
        imp_context_params cp = Context.DefaultParams();
        cp.n_ctx = prompt.Length + maxTokens + NativeMethods.IMP_MAX_DRAFT + 8;
        using (Context ctx = new Context(model, cp))
        {
            imp_sampling_params greedy = Context.DefaultSampling();
            imp_sampling_params sampled = Context.DefaultSampling();
            sampled.temperature = 0.8f;
            sampled.top_k = 40;
            sampled.top_p = 0.95f;
            sampled.seed = 7;
            object[][] cases = {
                new object[] { "greedy", greedy, 0 }, new object[] { "greedy", greedy, 1 },
                new object[] { "greedy", greedy, 3 }, new object[] { "sampled", sampled, 2 },
                new object[] { "sampled", sampled, 4 },
            };
            List<int> greedyPlain = null;
            foreach (object[] c in cases)
            {
                string name = (string)c[0];
                int k = (int)c[2];
                ctx.Reset();
                ctx.SetSampling((imp_sampling_params)c[1]);
                List<int> hand = ByHand(ctx, prompt, k, maxTokens, info.eos_token);
                ctx.Reset();
                imp_generate_params gp = Context.DefaultGenerate();
                gp.max_tokens = maxTokens;
                gp.n_draft = k;
                List<int> streamed = new List<int>();
                int[] output = new int[maxTokens];
                imp_stop_reason stop;
                long n = ctx.Generate(prompt, gp, delegate (int t) { streamed.Add(t); return true; }, output, out stop);
                List<int> gen = new List<int>(output).GetRange(0, (int)n);
                imp_stats stats = ctx.Stats;
                Console.WriteLine("  " + name + " k=" + k + ": imp_generate " + Show(gen) + " stop " + stop +
                                  ", verify calls " + stats.n_verify);
                Equal(Show(gen), Show(hand), name + " k=" + k + ": by-hand loop = imp_generate");
                Equal(Show(gen), Show(streamed), name + " k=" + k + ": callback saw every token");
                Check(stop == imp_stop_reason.IMP_STOP_MAX_TOKENS || stop == imp_stop_reason.IMP_STOP_EOS,
                      "stop reason");
                Check(k == 0 ? stats.n_verify == 0 : stats.n_verify > 0, "stats count verify calls");
                if (name == "greedy" && k == 0) greedyPlain = gen;
                if (name == "greedy" && k > 0)
                    Equal(Show(greedyPlain), Show(gen), "greedy with MTP k=" + k + " = greedy without");
            }

            // The callback stops generation, and an exception in it comes back out of Generate.
            ctx.Reset();
            ctx.SetSampling(greedy);
            imp_generate_params g2 = Context.DefaultGenerate();
            g2.n_draft = 3;
            g2.max_tokens = maxTokens;
            g2.eos_token = -2;
            int calls = 0;
            imp_stop_reason why;
            long m = ctx.Generate(prompt, g2, delegate (int t) { return ++calls < 3; }, null, out why);
            Equal(3L, m, "callback stop: tokens emitted");
            Equal(imp_stop_reason.IMP_STOP_CALLBACK, why, "callback stop: reason");
            ctx.Reset();
            bool rethrown = false;
            try
            {
                ctx.Generate(prompt, g2, delegate (int t) { throw new FormatException("from the callback"); }, null,
                             out why);
            }
            catch (InvalidOperationException e) { rethrown = e.InnerException is FormatException; }
            Check(rethrown, "an exception in the callback is rethrown after imp_generate");
            Equal(imp_stop_reason.IMP_STOP_CALLBACK, why, "throwing callback: reason");
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Errors and disposal
    // ---------------------------------------------------------------------------------------------------------

    static void TestErrors(string modelDir)
    {
        Console.WriteLine("errors");
        string bad = "/nonexistent/imp-model-dir";
        ImpException e = Throws(delegate { Model.Load(bad); }, "load of a missing path");
        if (e != null)
        {
            Console.WriteLine("  " + e.Message);
            Equal(imp_status.IMP_ERR_NOT_FOUND, e.Status, "missing path: status");
            Check(e.NativeMessage.Contains(bad), "missing path: message names the path");
            Check(e.Message.StartsWith("IMP_ERR_NOT_FOUND"), "missing path: exception message has the code name");
        }
        e = Throws(delegate { Tokenizer.Load(bad); }, "tokenizer load of a missing path");
        if (e != null) Equal(imp_status.IMP_ERR_NOT_FOUND, e.Status, "tokenizer missing path: status");

        Model model = Model.Load(modelDir);
        Context ctx = new Context(model);
        int v = model.NVocab;
        float[] logits = new float[v];
        e = Throws(delegate { ctx.Prefill(new int[] { 1, v }, imp_logits_mode.IMP_LOGITS_LAST, logits); },
                   "token out of range");
        if (e != null)
        {
            Console.WriteLine("  " + e.Message);
            Equal(imp_status.IMP_ERR_TOKEN_OUT_OF_RANGE, e.Status, "token out of range: status");
            Check(e.NativeMessage.Length > 0, "token out of range: message");
        }
        e = Throws(delegate { ctx.Decode(-1, logits); }, "negative token");
        if (e != null) Equal(imp_status.IMP_ERR_TOKEN_OUT_OF_RANGE, e.Status, "negative token: status");
        Equal(0, ctx.NPast, "the context is unchanged after the errors");
        int nAcc;
        e = Throws(delegate { ctx.MtpVerify(new int[1], 1, new int[2], out nAcc); }, "verify without draft");
        if (e != null) Equal(imp_status.IMP_ERR_BAD_STATE, e.Status, "verify without draft: status");
        e = Throws(delegate { ctx.Prefill(new int[] { 1 }, imp_logits_mode.IMP_LOGITS_LAST, new float[1]); },
                   "small logits buffer");
        if (e != null) Equal(imp_status.IMP_ERR_BUFFER_TOO_SMALL, e.Status, "small logits buffer: status");
        imp_sampling_params sp = Context.DefaultSampling();
        sp.temperature = -1;
        e = Throws(delegate { ctx.SetSampling(sp); }, "negative temperature");
        if (e != null) Equal(imp_status.IMP_ERR_INVALID_ARGUMENT, e.Status, "negative temperature: status");

        // The model disposed first: the context's reference keeps it alive until the context goes.
        model.Dispose();
        model.Dispose();
        Check(ThrowsType<ObjectDisposedException>(delegate { new Context(model); }),
              "a context over a disposed model throws ObjectDisposedException");
        ctx.Prefill(new int[] { 1, 2, 3 }, imp_logits_mode.IMP_LOGITS_LAST, logits);
        Equal(3, ctx.NPast, "a context still runs after its model was disposed");
        ctx.Dispose();
        ctx.Dispose();
        Check(ThrowsType<ObjectDisposedException>(delegate { ctx.Reset(); }),
              "a disposed context throws ObjectDisposedException");
        Check(ThrowsType<ObjectDisposedException>(delegate { int x = model.NVocab; }),
              "a disposed model throws ObjectDisposedException");
        GC.Collect();
        GC.WaitForPendingFinalizers();
    }

    // ---------------------------------------------------------------------------------------------------------
    // Logging
    // ---------------------------------------------------------------------------------------------------------

    sealed class LogRecorder
    {
        public readonly List<KeyValuePair<imp_log_level, string>> Lines = new List<KeyValuePair<imp_log_level, string>>();
        public void Add(imp_log_level level, string message)
        {
            lock (Lines) Lines.Add(new KeyValuePair<imp_log_level, string>(level, message));
        }
        public int Count { get { lock (Lines) return Lines.Count; } }
        public bool Has(imp_log_level level, string part)
        {
            lock (Lines)
                foreach (var l in Lines)
                    if (l.Key == level && l.Value.Contains(part)) return true;
            return false;
        }
        public int CountAbove(imp_log_level max)
        {
            int n = 0;
            lock (Lines)
                foreach (var l in Lines)
                    if (l.Key > max) ++n;
            return n;
        }
    }

    static void FailLoad(string bad)
    {
        ImpException e = Throws(delegate { Model.Load(bad); }, "load of a missing path (logging)");
        if (e != null) Equal(imp_status.IMP_ERR_NOT_FOUND, e.Status, "missing path with a log handler: status");
    }

    static void TestLogging()
    {
        Console.WriteLine("logging");
        string bad = "/nonexistent/imp-log-test";
        try
        {
            // DEBUG: libimp's "callback set" line, then the failed load at IMP_LOG_ERROR naming the status.
            LogRecorder a = new LogRecorder();
            Library.SetLogCallback(a.Add, imp_log_level.IMP_LOG_DEBUG);
            Check(a.Has(imp_log_level.IMP_LOG_DEBUG, Library.Version()), "DEBUG: the 'callback set' line");
            FailLoad(bad);
            Check(a.Has(imp_log_level.IMP_LOG_ERROR, "IMP_ERR_NOT_FOUND"), "the failed load is logged at ERROR with its status");
            Check(a.Has(imp_log_level.IMP_LOG_ERROR, bad), "the ERROR line names the path");
            lock (a.Lines)
                foreach (var l in a.Lines) Console.WriteLine("  [" + l.Key + "] " + l.Value);

            // The delegate libimp holds survives a collection (Library keeps it in a static field).
            int before = a.Count;
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            FailLoad(bad);
            Check(a.Count > before, "the handler still runs after a GC");

            // ERROR threshold with a new handler: the old one sees nothing more, nothing above ERROR arrives.
            LogRecorder b = new LogRecorder();
            int aCount = a.Count;
            Library.SetLogCallback(b.Add, imp_log_level.IMP_LOG_ERROR);
            FailLoad(bad);
            Equal(aCount, a.Count, "the replaced handler is not called any more");
            Check(b.Has(imp_log_level.IMP_LOG_ERROR, "IMP_ERR_NOT_FOUND"), "ERROR threshold: the failure arrives");
            Equal(0, b.CountAbove(imp_log_level.IMP_LOG_ERROR), "ERROR threshold: nothing less severe");

            // A bad level is refused, changes nothing, and is itself logged to the handler in place.
            ImpException e = Throws(delegate { Library.SetLogCallback(a.Add, (imp_log_level)7); }, "log level 7");
            if (e != null) Equal(imp_status.IMP_ERR_INVALID_ARGUMENT, e.Status, "log level 7: status");
            Check(b.Has(imp_log_level.IMP_LOG_ERROR, "IMP_ERR_INVALID_ARGUMENT"), "the refused level is logged");
            Equal(aCount, a.Count, "a refused level installs nothing");

            // A throwing handler: the exception stays on the managed side, the call reports its own status.
            int thrown = 0;
            Library.SetLogCallback(delegate (imp_log_level l, string m) { ++thrown; throw new FormatException("from the log handler"); },
                                   imp_log_level.IMP_LOG_DEBUG);
            FailLoad(bad);
            Check(thrown >= 2, "the throwing handler ran (callback set line, failed load): " + thrown);

            // Re-entrancy: SetLogCallback from inside a handler throws IMP_ERR_BAD_STATE and changes nothing.
            imp_status nested = imp_status.IMP_OK;
            LogRecorder c = new LogRecorder();
            Library.SetLogCallback(delegate (imp_log_level l, string m)
            {
                c.Add(l, m);
                try { Library.SetLogCallback(null, imp_log_level.IMP_LOG_ERROR); }
                catch (ImpException x) { nested = x.Status; }
            }, imp_log_level.IMP_LOG_DEBUG);
            Equal(imp_status.IMP_ERR_BAD_STATE, nested, "SetLogCallback inside a handler");
            FailLoad(bad);
            Check(c.Has(imp_log_level.IMP_LOG_ERROR, "IMP_ERR_NOT_FOUND"), "the handler is still installed after the refused nested call");

            // Many threads: every failure reaches the handler, one call at a time.
            LogRecorder d = new LogRecorder();
            int running = 0, overlapped = 0;
            Library.SetLogCallback(delegate (imp_log_level l, string m)
            {
                if (Interlocked.Increment(ref running) != 1) Interlocked.Increment(ref overlapped);
                if (l == imp_log_level.IMP_LOG_ERROR) d.Add(l, m);
                Thread.Sleep(0);
                Interlocked.Decrement(ref running);
            }, imp_log_level.IMP_LOG_ERROR);
            const int nThreads = 4, nEach = 25;
            Thread[] threads = new Thread[nThreads];
            for (int i = 0; i < nThreads; ++i)
            {
                threads[i] = new Thread(delegate ()
                {
                    for (int j = 0; j < nEach; ++j)
                        try { Model.Load(bad); } catch (ImpException) { }
                });
                threads[i].Start();
            }
            foreach (Thread t in threads) t.Join();
            Equal(nThreads * nEach, d.Count, "every failure from " + nThreads + " threads is logged");
            Equal(0, overlapped, "handler calls never overlap");

            // Off: nothing is called any more.
            Library.SetLogCallback(null, imp_log_level.IMP_LOG_DEBUG);
            int dCount = d.Count, cCount = c.Count;
            FailLoad(bad);
            Equal(dCount, d.Count, "no calls after uninstalling");
            Equal(cCount, c.Count, "no calls to earlier handlers after uninstalling");
            Console.WriteLine("  " + a.Count + " + " + b.Count + " + " + c.Count + " + " + d.Count + " lines logged");
        }
        finally
        {
            Library.SetLogCallback(null, imp_log_level.IMP_LOG_ERROR);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // nuspec
    // ---------------------------------------------------------------------------------------------------------

    static void TestNuspec()
    {
        string path = Opt("nuspec");
        Console.WriteLine("nuspec: " + path);
        XmlDocument doc = new XmlDocument();
        doc.Load(path); // throws on malformed XML
        XmlNamespaceManager ns = new XmlNamespaceManager(doc.NameTable);
        ns.AddNamespace("n", doc.DocumentElement.NamespaceURI);
        Equal("package", doc.DocumentElement.LocalName, "root element");
        XmlNode id = doc.SelectSingleNode("/n:package/n:metadata/n:id", ns);
        XmlNode version = doc.SelectSingleNode("/n:package/n:metadata/n:version", ns);
        Check(id != null && id.InnerText == "Imp", "metadata/id is Imp");
        Check(version != null && version.InnerText == Library.Version(), "metadata/version = imp_version()");
        var rids = new HashSet<string>();
        foreach (XmlNode f in doc.SelectNodes("/n:package/n:files/n:file", ns))
        {
            string src = f.Attributes["src"].Value, target = f.Attributes["target"].Value;
            if (target.StartsWith("runtimes/"))
            {
                string[] parts = target.Split('/');
                Check(parts.Length == 4 && parts[2] == "native", "native target " + target + " is runtimes/<rid>/native/");
                string want = parts[1].StartsWith("win") ? "imp.dll" : "libimp.so";
                Equal(want, parts[3], "native file name for " + parts[1]);
                rids.Add(parts[1]);
            }
            if (src.StartsWith("$native_linux_x64$/"))
            {
                string real = Path.Combine(Opt("native-dir"), src.Substring("$native_linux_x64$/".Length));
                Check(File.Exists(real), "linux-x64 native src exists: " + real);
            }
            else if (!src.StartsWith("$"))
            {
                string real = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)), src);
                Check(File.Exists(real), "src exists: " + real);
            }
        }
        Check(rids.Contains("linux-x64") && rids.Contains("win-x64"), "linux-x64 and win-x64 runtimes");
    }

    static int Main(string[] args)
    {
        for (int i = 0; i + 1 < args.Length; i += 2) opts[args[i].TrimStart('-')] = args[i + 1];
        Console.WriteLine("libimp " + Library.Version() + ", ABI " + Library.AbiVersion());
        Action[] tests = {
            TestLayout,
            delegate { string dir = ChooseModel(); using (Model m = Model.Load(dir)) TestLoop(m, dir); TestErrors(dir); },
            TestLogging,
            TestNuspec,
        };
        foreach (Action t in tests)
        {
            try { t(); }
            catch (Exception e)
            {
                ++failures;
                Console.WriteLine("  FAIL: unexpected " + e);
            }
        }
        Console.WriteLine((failures == 0 ? "PASS" : "FAIL") + ": " + checks + " checks, " + failures + " failed");
        return failures == 0 ? 0 : 1;
    }
}
