// Handles.cs - SafeHandles for the three owned objects of imp.h. The runtime frees each exactly once (Dispose,
// or the finalizer if it was forgotten) and refuses a handle after that (ObjectDisposedException), so disposing
// twice is safe. A context holds a counted reference to its model's handle (DangerousAddRef), so the model is
// freed only after its last context, as imp.h requires, whatever order the program disposes them in.
using System;
using System.Runtime.InteropServices;

namespace Imp
{
    public sealed class ModelHandle : SafeHandle
    {
        public ModelHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle()
        {
            NativeMethods.imp_model_free(handle);
            return true;
        }
    }

    public sealed class ContextHandle : SafeHandle
    {
        ModelHandle model; // AddRef'ed while this context lives

        public ContextHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        // Takes over one reference the caller already added to model with DangerousAddRef.
        internal void AdoptModelReference(ModelHandle m) { model = m; }

        protected override bool ReleaseHandle()
        {
            NativeMethods.imp_context_free(handle);
            if (model != null)
            {
                model.DangerousRelease();
                model = null;
            }
            return true;
        }
    }

    public sealed class TokenizerHandle : SafeHandle
    {
        public TokenizerHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle()
        {
            NativeMethods.imp_tokenizer_free(handle);
            return true;
        }
    }
}
