// Lets the unit tests import the guest modules on node: with `node --import ./test/register.js
// --test test/*.test.js`, the component's import `hotswap:otp/runtime@0.1.0` is fake-runtime.js.
import { register } from 'node:module';

register('./loader.js', import.meta.url);
