//! The authkey handshake of CPython's `multiprocessing.connection`.
