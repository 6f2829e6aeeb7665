// Imported first by the CLI, before anything touches libuv's thread pool (created on first
// use): fsync, rename and open run there, and 4 threads (the default) would queue the
// durable writes of busy sessions behind each other. An operator's own value wins.
process.env.UV_THREADPOOL_SIZE ??= '16';
export {};
