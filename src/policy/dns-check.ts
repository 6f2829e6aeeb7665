export * from '../dnsbl/runtime.js';
