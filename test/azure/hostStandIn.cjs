// Preloaded with `node --require` in place of the Functions host: answers the worker's
// `require('@azure/functions-core')` and prints every function the app registers, as the host receives it.
const Module = require('node:module');
const registered = [];
// name -> the handler the app registered, for a runner that invokes functions after loading the app
const handlers = new Map();
globalThis[Symbol.for('makoto-lake.hostStandIn.handlers')] = handlers;
const core = {
  version: 'stand-in',
  setProgrammingModel() {},
  registerFunction(metadata, handler) {
    registered.push(metadata);
    handlers.set(metadata.name, handler);
    return { dispose() {} };
  },
  registerHook() {
    return { dispose() {} };
  },
  getProgrammingModel() {},
};
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === '@azure/functions-core') return core;
  return load.call(this, request, ...rest);
};
process.on('beforeExit', () => {
  if (!process.env.REGISTERED_PRINTED) {
    process.env.REGISTERED_PRINTED = '1';
    process.stdout.write(JSON.stringify(registered));
  }
});
