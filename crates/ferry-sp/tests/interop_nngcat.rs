//! Interop with the real NNG over tcp and ipc: every case of the [`interop`] table, with
//! ferry listening and with nngcat listening.

mod interop;

interop::nngcat_matrix!(tcp: Tcp, ipc: Ipc);
