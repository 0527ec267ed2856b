// A node module-resolution hook (see register.js): the host API import of the guests resolves to
// the fake host of the tests; everything else resolves as usual.
export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'hotswap:otp/runtime@0.1.0') {
    return { url: new URL('./fake-runtime.js', import.meta.url).href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
