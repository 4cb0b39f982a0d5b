// Imp.cs - the managed face of libimp: Model, Context and Tokenizer own their SafeHandles (IDisposable), every
// failing status becomes an ImpException carrying the code and imp_last_error(), and arrays replace pointer +
// length pairs. Each method is one imp.h call (named in its comment) plus the checks around it.
using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Imp
{
    // A non-OK imp_status with the message imp_last_error() gave on the failing thread.
    public sealed class ImpException : Exception
    {
        public imp_status Status { get; private set; }
        public string NativeMessage { get; private set; }

        public ImpException(imp_status status, string nativeMessage)
            : base(Library.StatusName(status) + ": " + nativeMessage)
        {
            Status = status;
            NativeMessage = nativeMessage;
        }

        // Throws for any status but IMP_OK. Reads imp_last_error() first: the next libimp call would clear it.
        public static void Check(imp_status status)
        {
            if (status == imp_status.IMP_OK) return;
            string message = Library.LastError();
            throw new ImpException(status, message);
        }
    }

    internal static class Utf8
    {
        // NUL-terminated UTF-8 for const char* parameters (the default string marshalling is ANSI on Windows).
        public static byte[] ToNative(string s)
        {
            if (s == null) return null;
            byte[] b = new byte[Encoding.UTF8.GetByteCount(s) + 1];
            Encoding.UTF8.GetBytes(s, 0, s.Length, b, 0);
            return b;
        }

        public static string FromNative(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0) ++n;
            byte[] b = new byte[n];
            Marshal.Copy(p, b, 0, n);
            return Encoding.UTF8.GetString(b);
        }
    }

    // Library-wide calls: versions, errors, UTF-8 streaming help.
    public static unsafe class Library
    {
        public static string Version() { return Utf8.FromNative(NativeMethods.imp_version()); }
        public static int AbiVersion() { return NativeMethods.imp_abi_version(); }
        public static string LastError() { return Utf8.FromNative(NativeMethods.imp_last_error()); }
        public static string StatusName(imp_status status)
        {
            return Utf8.FromNative(NativeMethods.imp_status_name(status));
        }

        // ----- Logging: imp_set_log_callback -----

        static readonly object logLock = new object(); // serialises setters, so logThunk matches the native sink
#pragma warning disable 414 // written only: the reference is what keeps the delegate from being collected
        static imp_log_callback logThunk;              // the delegate libimp holds; alive while it is installed
#pragma warning restore 414
        [ThreadStatic] static bool inLogCallback;      // set while this thread runs the handler

        // imp_set_log_callback: libimp's messages of level <= maxLevel, from every model and context of the
        // process, go to handler (level, message); null turns logging off (the default). The handler runs on
        // whichever thread called into libimp, one call at a time; it must not call libimp. Exceptions it throws
        // are caught and dropped (they cannot cross native frames). When this returns, the previous handler is
        // not running and will not be called again. Throws ImpException IMP_ERR_BAD_STATE when called from inside
        // a handler, IMP_ERR_INVALID_ARGUMENT for a maxLevel outside IMP_LOG_ERROR .. IMP_LOG_DEBUG.
        public static void SetLogCallback(Action<imp_log_level, string> handler, imp_log_level maxLevel)
        {
            // Checked before the lock: another thread may hold it while libimp waits for this handler to return.
            if (inLogCallback)
                throw new ImpException(imp_status.IMP_ERR_BAD_STATE,
                                       "Library.SetLogCallback was called from inside a log callback");
            imp_log_callback thunk = null;
            if (handler != null)
            {
                thunk = delegate (imp_log_level level, IntPtr message, IntPtr userData)
                {
                    bool outer = inLogCallback;
                    inLogCallback = true;
                    try { handler(level, Utf8.FromNative(message)); }
                    catch (Exception) { } // never unwind through native frames
                    finally { inLogCallback = outer; }
                };
            }
            lock (logLock)
            {
                imp_status st = NativeMethods.imp_set_log_callback(thunk, IntPtr.Zero, maxLevel);
                if (st != imp_status.IMP_OK)
                {
                    string message = LastError();
                    GC.KeepAlive(thunk); // libimp may have called it (its "callback set" line) before failing
                    throw new ImpException(st, message);
                }
                // libimp no longer calls the old delegate: it may be collected now.
                logThunk = thunk;
            }
        }

        // imp_utf8_incomplete_tail over bytes[offset .. offset+count).
        public static int Utf8IncompleteTail(byte[] bytes, int offset, int count)
        {
            CheckRange(bytes, offset, count);
            fixed (byte* p = bytes)
                return (int)NativeMethods.imp_utf8_incomplete_tail(count == 0 ? null : p + offset, (UIntPtr)count);
        }

        internal static void CheckRange<T>(T[] a, int offset, int count)
        {
            if (a == null) throw new ArgumentNullException("array");
            if (offset < 0 || count < 0 || offset > a.Length - count)
                throw new ArgumentOutOfRangeException("offset", "offset/count lie outside the array");
        }
    }

    // A loaded model (imp_model): immutable, may be shared by contexts on many threads.
    public sealed unsafe class Model : IDisposable
    {
        public ModelHandle Handle { get; private set; }

        bool disposed;

        Model(ModelHandle h) { Handle = h; }

        // The handle, or ObjectDisposedException once Dispose ran (even while contexts keep the native model alive).
        internal ModelHandle Live
        {
            get
            {
                if (disposed) throw new ObjectDisposedException("Imp.Model");
                return Handle;
            }
        }

        // imp_model_default_params()
        public static imp_model_params DefaultParams() { return NativeMethods.imp_model_default_params(); }

        // imp_model_load: a Hugging Face model directory (config.json + *.safetensors).
        public static Model Load(string path) { return Load(path, DefaultParams()); }

        public static Model Load(string path, imp_model_params p)
        {
            if (path == null) throw new ArgumentNullException("path");
            p.size = (uint)Marshal.SizeOf(typeof(imp_model_params));
            ModelHandle h;
            imp_status st = NativeMethods.imp_model_load(out h, Utf8.ToNative(path), ref p);
            if (st != imp_status.IMP_OK)
            {
                string message = Library.LastError();
                h.Dispose();
                throw new ImpException(st, message);
            }
            return new Model(h);
        }

        // imp_model_get_info
        public imp_model_info Info
        {
            get
            {
                imp_model_info info = new imp_model_info();
                info.size = (uint)Marshal.SizeOf(typeof(imp_model_info));
                ImpException.Check(NativeMethods.imp_model_get_info(Live, ref info));
                return info;
            }
        }

        // imp_model_info.arch as a string.
        public string Arch
        {
            get
            {
                imp_model_info info = Info;
                int n = 0;
                while (n < 32 && info.arch[n] != 0) ++n;
                byte[] b = new byte[n];
                for (int i = 0; i < n; ++i) b[i] = info.arch[i];
                return Encoding.UTF8.GetString(b);
            }
        }

        // imp_model_n_vocab
        public int NVocab { get { return NativeMethods.imp_model_n_vocab(Live); } }

        // Frees the model once no context uses it any more (contexts hold a reference). Safe to call twice.
        public void Dispose()
        {
            disposed = true;
            Handle.Dispose();
        }
    }

    // One sequence's state (imp_context). One thread at a time.
    public sealed unsafe class Context : IDisposable
    {
        public ContextHandle Handle { get; private set; }
        public Model Model { get; private set; }
        readonly int nVocab;

        // imp_context_default_params()
        public static imp_context_params DefaultParams() { return NativeMethods.imp_context_default_params(); }

        public Context(Model model) : this(model, DefaultParams()) { }

        // imp_context_create. The context keeps model's handle alive until it is disposed itself.
        public Context(Model model, imp_context_params p)
        {
            if (model == null) throw new ArgumentNullException("model");
            p.size = (uint)Marshal.SizeOf(typeof(imp_context_params));
            bool added = false;
            ModelHandle mh = model.Live; // ObjectDisposedException once the model was disposed
            mh.DangerousAddRef(ref added);
            try
            {
                ContextHandle h;
                imp_status st = NativeMethods.imp_context_create(out h, mh, ref p);
                if (st != imp_status.IMP_OK)
                {
                    string message = Library.LastError();
                    h.Dispose();
                    throw new ImpException(st, message);
                }
                h.AdoptModelReference(mh);
                added = false;
                Handle = h;
            }
            finally
            {
                if (added) mh.DangerousRelease();
            }
            Model = model;
            nVocab = NativeMethods.imp_model_n_vocab(mh);
        }

        public int NVocab { get { return nVocab; } }

        // imp_context_reset
        public void Reset() { ImpException.Check(NativeMethods.imp_context_reset(Handle)); }
        // imp_context_n_past
        public int NPast { get { return NativeMethods.imp_context_n_past(Handle); } }
        // imp_context_n_ctx
        public int NCtx { get { return NativeMethods.imp_context_n_ctx(Handle); } }

        // imp_prefill of tokens[offset .. offset+count) into logits (may be null with IMP_LOGITS_NONE).
        public void Prefill(int[] tokens, int offset, int count, imp_logits_mode mode, float[] logits)
        {
            Library.CheckRange(tokens, offset, count);
            fixed (int* t = tokens)
            fixed (float* l = logits)
            {
                ImpException.Check(NativeMethods.imp_prefill(Handle, count == 0 ? null : t + offset, count, mode, l,
                                                             (UIntPtr)(logits == null ? 0 : logits.Length)));
            }
        }

        public void Prefill(int[] tokens, imp_logits_mode mode, float[] logits)
        {
            Prefill(tokens, 0, tokens == null ? 0 : tokens.Length, mode, logits);
        }

        // imp_decode: one token; logits may be null.
        public void Decode(int token, float[] logits)
        {
            fixed (float* l = logits)
                ImpException.Check(NativeMethods.imp_decode(Handle, token, l,
                                                            (UIntPtr)(logits == null ? 0 : logits.Length)));
        }

        // imp_sampling_default_params()
        public static imp_sampling_params DefaultSampling() { return NativeMethods.imp_sampling_default_params(); }

        // imp_context_set_sampling
        public void SetSampling(imp_sampling_params p)
        {
            p.size = (uint)Marshal.SizeOf(typeof(imp_sampling_params));
            ImpException.Check(NativeMethods.imp_context_set_sampling(Handle, ref p));
        }

        // imp_sample: logits holds n_vocab floats.
        public int Sample(float[] logits)
        {
            if (logits == null) throw new ArgumentNullException("logits");
            if (logits.Length < nVocab) throw new ArgumentException("logits must hold n_vocab floats", "logits");
            int token;
            fixed (float* l = logits)
                ImpException.Check(NativeMethods.imp_sample(Handle, l, out token));
            return token;
        }

        // imp_mtp_draft: nDraft tokens after last into drafts (and their probabilities into draftProbs, may be null).
        public void MtpDraft(int last, int nDraft, int[] drafts, float[] draftProbs)
        {
            if (drafts == null) throw new ArgumentNullException("drafts");
            if (nDraft > drafts.Length || (draftProbs != null && nDraft > draftProbs.Length))
                throw new ArgumentException("nDraft exceeds the arrays", "nDraft");
            fixed (int* d = drafts)
            fixed (float* p = draftProbs)
                ImpException.Check(NativeMethods.imp_mtp_draft(Handle, last, nDraft, d, p));
        }

        // imp_mtp_verify: returns n_out (accepted drafts + one token, in output[0 .. n_out)).
        public int MtpVerify(int[] drafts, int nDrafts, int[] output, out int nAccepted)
        {
            if (drafts == null) throw new ArgumentNullException("drafts");
            if (output == null) throw new ArgumentNullException("output");
            if (nDrafts > drafts.Length) throw new ArgumentException("nDrafts exceeds drafts", "nDrafts");
            int nOut;
            fixed (int* d = drafts)
            fixed (int* o = output)
                ImpException.Check(NativeMethods.imp_mtp_verify(Handle, d, nDrafts, o, output.Length, out nOut,
                                                                out nAccepted));
            return nOut;
        }

        // imp_generate_default_params()
        public static imp_generate_params DefaultGenerate() { return NativeMethods.imp_generate_default_params(); }

        // imp_generate: onToken (may be null) sees each token and returns false to stop; output (may be null)
        // receives the first output.Length tokens. Returns the number emitted. An exception thrown by onToken stops
        // generation and is rethrown here, after the native call has returned.
        public long Generate(int[] prompt, imp_generate_params p, Func<int, bool> onToken, int[] output,
                             out imp_stop_reason stop)
        {
            if (prompt == null) throw new ArgumentNullException("prompt");
            p.size = (uint)Marshal.SizeOf(typeof(imp_generate_params));
            Exception thrown = null;
            imp_token_callback cb = null;
            if (onToken != null)
            {
                cb = delegate (int token, IntPtr userData)
                {
                    try { return onToken(token) ? 0 : 1; }
                    catch (Exception e) { thrown = e; return 1; } // never unwind through native frames
                };
            }
            UIntPtr nOut;
            imp_status st;
            fixed (int* pr = prompt)
            fixed (int* o = output)
            {
                st = NativeMethods.imp_generate(Handle, pr, prompt.Length, ref p, cb, IntPtr.Zero, o,
                                                (UIntPtr)(output == null ? 0 : output.Length), out nOut, out stop);
            }
            GC.KeepAlive(cb); // the native side called it until imp_generate returned
            ImpException.Check(st);
            if (thrown != null) throw new InvalidOperationException("the token callback threw", thrown);
            return (long)(ulong)nOut;
        }

        // imp_context_get_stats
        public imp_stats Stats
        {
            get
            {
                imp_stats s = new imp_stats();
                s.size = (uint)Marshal.SizeOf(typeof(imp_stats));
                ImpException.Check(NativeMethods.imp_context_get_stats(Handle, ref s));
                return s;
            }
        }

        public void Dispose() { Handle.Dispose(); }
    }

    // A loaded tokenizer.json (imp_tokenizer): immutable, may be used from many threads.
    public sealed unsafe class Tokenizer : IDisposable
    {
        public TokenizerHandle Handle { get; private set; }

        Tokenizer(TokenizerHandle h) { Handle = h; }

        // imp_tokenizer_load: a tokenizer.json or a model directory holding one.
        public static Tokenizer Load(string path)
        {
            if (path == null) throw new ArgumentNullException("path");
            TokenizerHandle h;
            imp_status st = NativeMethods.imp_tokenizer_load(out h, Utf8.ToNative(path));
            if (st != imp_status.IMP_OK)
            {
                string message = Library.LastError();
                h.Dispose();
                throw new ImpException(st, message);
            }
            return new Tokenizer(h);
        }

        // imp_tokenizer_n_vocab
        public int NVocab { get { return NativeMethods.imp_tokenizer_n_vocab(Handle); } }

        // imp_tokenize, sized by a first call with capacity 0.
        public int[] Tokenize(string text, bool parseSpecial)
        {
            if (text == null) throw new ArgumentNullException("text");
            byte[] b = Encoding.UTF8.GetBytes(text);
            UIntPtr n;
            fixed (byte* t = b)
            {
                byte* tp = b.Length == 0 ? null : t;
                imp_status st = NativeMethods.imp_tokenize(Handle, tp, (UIntPtr)b.Length, parseSpecial ? 1 : 0, null,
                                                           UIntPtr.Zero, out n);
                if (st != imp_status.IMP_ERR_BUFFER_TOO_SMALL) ImpException.Check(st);
                int[] ids = new int[(int)n];
                if (ids.Length == 0) return ids;
                fixed (int* ip = ids)
                    ImpException.Check(NativeMethods.imp_tokenize(Handle, tp, (UIntPtr)b.Length, parseSpecial ? 1 : 0,
                                                                  ip, (UIntPtr)ids.Length, out n));
                return ids;
            }
        }

        // imp_detokenize: the raw bytes (a prefix of a sequence may end inside a UTF-8 character).
        public byte[] DetokenizeBytes(int[] tokens, bool skipSpecial)
        {
            if (tokens == null) throw new ArgumentNullException("tokens");
            UIntPtr n;
            fixed (int* t = tokens)
            {
                int* tp = tokens.Length == 0 ? null : t;
                imp_status st = NativeMethods.imp_detokenize(Handle, tp, (UIntPtr)tokens.Length, skipSpecial ? 1 : 0,
                                                             null, UIntPtr.Zero, out n);
                if (st != imp_status.IMP_ERR_BUFFER_TOO_SMALL) ImpException.Check(st);
                byte[] buf = new byte[(int)n];
                if (buf.Length == 0) return buf;
                fixed (byte* bp = buf)
                    ImpException.Check(NativeMethods.imp_detokenize(Handle, tp, (UIntPtr)tokens.Length,
                                                                    skipSpecial ? 1 : 0, bp, (UIntPtr)buf.Length,
                                                                    out n));
                return buf;
            }
        }

        public string Detokenize(int[] tokens, bool skipSpecial)
        {
            return Encoding.UTF8.GetString(DetokenizeBytes(tokens, skipSpecial));
        }

        // imp_token_to_piece: one token's raw bytes.
        public byte[] TokenToPiece(int token)
        {
            UIntPtr n;
            imp_status st = NativeMethods.imp_token_to_piece(Handle, token, null, UIntPtr.Zero, out n);
            if (st != imp_status.IMP_ERR_BUFFER_TOO_SMALL) ImpException.Check(st);
            byte[] buf = new byte[(int)n];
            if (buf.Length == 0) return buf;
            fixed (byte* bp = buf)
                ImpException.Check(NativeMethods.imp_token_to_piece(Handle, token, bp, (UIntPtr)buf.Length, out n));
            return buf;
        }

        // imp_tokenizer_token_id: the id whose text is exactly text; throws IMP_ERR_NOT_FOUND if there is none.
        public int TokenId(string text)
        {
            int id;
            ImpException.Check(NativeMethods.imp_tokenizer_token_id(Handle, Utf8.ToNative(text), out id));
            return id;
        }

        // imp_tokenizer_is_special
        public bool IsSpecial(int token) { return NativeMethods.imp_tokenizer_is_special(Handle, token) != 0; }

        public void Dispose() { Handle.Dispose(); }
    }
}
