//! Collectives for data-parallel training (issue 16, part 2), from libtorch's own c10d: a
//! [`Store`] to meet through (c10d's TCPStore, optionally under a key prefix), a
//! [`ProcessGroup`] over it (c10d's ProcessGroupGloo on the CPU, ProcessGroupNCCL on CUDA), and
//! the three collectives the trainer needs: sum over ranks, broadcast from one rank, barrier.
//! Nothing here implements a collective; every call is c10d's, as `torch.distributed` makes it.
//!
//! The C++ side is `shim/dist.cpp` (and `shim/dist_nccl.cpp` where libtorch has CUDA), under
//! accel's conventions: tensors cross as tch's `C_tensor`, C++ exceptions come back as
//! [`DistError`]. A peer that dies or stops answering makes the next collective fail with a
//! [`DistError`] naming it, after at most the group's timeout, instead of hanging.
//!
//! Under torchrun (`TORCHELASTIC_USE_AGENT_STORE=True`) the agent already serves the store at
//! `MASTER_ADDR:MASTER_PORT`, so every rank, rank 0 included, joins it as a client, under the
//! prefix `/worker/attempt_{TORCHELASTIC_RESTART_COUNT}`; otherwise rank 0 serves it.

use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt;
use std::ptr::NonNull;
use std::str::FromStr;
use std::time::Duration;

use tch::Tensor;
use torch_sys::C_tensor;

/// A `c10::intrusive_ptr<c10d::Store>` the shim allocated.
#[repr(C)]
struct StoreHandle {
    _opaque: [u8; 0],
}

/// A `c10::intrusive_ptr<c10d::Backend>` the shim allocated.
#[repr(C)]
struct GroupHandle {
    _opaque: [u8; 0],
}

extern "C" {
    fn ncsn_dist_free(message: *mut c_char);
    fn ncsn_dist_nccl_built() -> bool;
    fn ncsn_dist_tcp_store(
        host: *const c_char,
        port: u16,
        world: i64,
        is_server: bool,
        timeout_ms: i64,
        out: *mut *mut StoreHandle,
    ) -> *mut c_char;
    fn ncsn_dist_prefix_store(
        store: *const StoreHandle,
        prefix: *const c_char,
        out: *mut *mut StoreHandle,
    ) -> *mut c_char;
    fn ncsn_dist_store_free(store: *mut StoreHandle);
    fn ncsn_dist_group_new(
        backend: c_int,
        store: *const StoreHandle,
        rank: c_int,
        world: c_int,
        timeout_ms: i64,
        out: *mut *mut GroupHandle,
    ) -> *mut c_char;
    fn ncsn_dist_group_free(group: *mut GroupHandle);
    fn ncsn_dist_backend_name(group: *const GroupHandle, name: *mut *mut c_char) -> *mut c_char;
    fn ncsn_dist_all_reduce_sum(group: *const GroupHandle, t: *mut C_tensor) -> *mut c_char;
    fn ncsn_dist_broadcast(group: *const GroupHandle, t: *mut C_tensor, root: c_int)
        -> *mut c_char;
    fn ncsn_dist_barrier(group: *const GroupHandle) -> *mut c_char;
}

/// A c10d call failed; the message says which and carries libtorch's own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("libtorch c10d: {0}")]
pub struct DistError(pub String);

/// Takes the shim's malloc'ed string (NULL: none), freeing it.
fn take_string(message: *mut c_char) -> Option<String> {
    if message.is_null() {
        return None;
    }
    // SAFETY: a non-null string from the shim is NUL-terminated, malloc'ed and ours to free.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    unsafe { ncsn_dist_free(message) };
    Some(text)
}

/// The shim's error message (NULL: success) as a result, with `what` failed in front.
fn check(message: *mut c_char, what: impl FnOnce() -> String) -> Result<(), DistError> {
    match take_string(message) {
        None => Ok(()),
        Some(text) => Err(DistError(format!("{}: {text}", what()))),
    }
}

fn millis(timeout: Duration) -> i64 {
    i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)
}

fn c_count(n: usize, what: &str) -> Result<c_int, DistError> {
    c_int::try_from(n).map_err(|_| DistError(format!("{what} {n} is out of range")))
}

/// Whether this build has the NCCL process group: the libtorch torchrt was compiled against had
/// libtorch_cuda.so. Making one also needs the libtorch loaded at run time to have it (it is
/// looked up then, not linked) and a CUDA GPU; otherwise [`ProcessGroup::new`] says which.
pub fn nccl_built() -> bool {
    // SAFETY: reads a constant.
    unsafe { ncsn_dist_nccl_built() }
}

/// A loopback port nobody listens on now (the OS's choice), for a store that only this
/// machine's processes join: `ncsn doctor --check`'s one-rank groups, the tests.
pub fn free_loopback_port() -> Result<u16, DistError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DistError(format!("no free loopback port: {e}")))
}

/// The c10d process group implementation, spelled as `torch.distributed` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// CPU tensors, over TCP.
    Gloo,
    /// CUDA tensors, one GPU per rank.
    Nccl,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gloo => "gloo",
            Backend::Nccl => "nccl",
        }
    }

    fn code(self) -> c_int {
        match self {
            Backend::Gloo => 0,
            Backend::Nccl => 1,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = DistError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gloo" => Ok(Backend::Gloo),
            "nccl" => Ok(Backend::Nccl),
            other => Err(DistError(format!(
                "unknown process group backend {other:?}: gloo or nccl"
            ))),
        }
    }
}

/// Where the ranks meet and exchange addresses: c10d's key-value store (a TCPStore, or a
/// PrefixStore over one). Dropping it while groups built on it live is fine: they hold their
/// own reference.
pub struct Store {
    handle: NonNull<StoreHandle>,
}

// SAFETY: c10d stores are used from any thread by torch.distributed; TCPStore serialises its
// client's requests with a lock (activeOpLock_) and PrefixStore only forwards to it.
unsafe impl Send for Store {}
unsafe impl Sync for Store {}

impl Store {
    /// c10d's TCPStore at `host:port`. With `is_server` this process listens on `port` and
    /// waits (up to `timeout`) until `world` ranks, itself included, have joined; otherwise it
    /// connects to the server, retrying until `timeout`. `timeout` also bounds every later
    /// wait on a key, such as a group's rendezvous.
    pub fn tcp(
        host: &str,
        port: u16,
        world: usize,
        is_server: bool,
        timeout: Duration,
    ) -> Result<Store, DistError> {
        let what = || {
            let role = if is_server { "serving" } else { "joining" };
            format!("{role} the TCPStore at {host}:{port} for {world} ranks")
        };
        let c_host = CString::new(host)
            .map_err(|_| DistError(format!("{}: the host has a NUL byte", what())))?;
        let world_c = i64::try_from(world).unwrap_or(i64::MAX);
        let mut out: *mut StoreHandle = std::ptr::null_mut();
        // SAFETY: valid C string; `out` is written on success only.
        check(
            unsafe {
                ncsn_dist_tcp_store(
                    c_host.as_ptr(),
                    port,
                    world_c,
                    is_server,
                    millis(timeout),
                    &mut out,
                )
            },
            what,
        )?;
        Ok(Store {
            handle: NonNull::new(out).expect("the shim returned a store"),
        })
    }

    /// The same store with every key under `prefix` (c10d's PrefixStore), so that groups
    /// built on differently prefixed views of one store do not see each other's keys.
    ///
    /// Panics if `prefix` has a NUL byte, or if libtorch cannot allocate the wrapper.
    pub fn prefixed(&self, prefix: &str) -> Store {
        let c_prefix = CString::new(prefix).expect("a store prefix has no NUL byte");
        let mut out: *mut StoreHandle = std::ptr::null_mut();
        // SAFETY: `self.handle` is live; `out` is written on success only.
        let done = check(
            unsafe { ncsn_dist_prefix_store(self.handle.as_ptr(), c_prefix.as_ptr(), &mut out) },
            || format!("prefixing a store with {prefix:?}"),
        );
        if let Err(e) = done {
            panic!("{e}");
        }
        Store {
            handle: NonNull::new(out).expect("the shim returned a store"),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: our one reference, released once.
        unsafe { ncsn_dist_store_free(self.handle.as_ptr()) }
    }
}

/// One rank's membership of a c10d process group. The collectives must be called in the same
/// order on every rank, as with `torch.distributed`.
pub struct ProcessGroup {
    handle: NonNull<GroupHandle>,
    rank: usize,
    world: usize,
    backend: Backend,
}

// SAFETY: a c10d Backend may be used from any thread (its work runs on its own threads); it is
// not Sync because collectives issued from two threads at once could reach c10d in different
// orders on different ranks.
unsafe impl Send for ProcessGroup {}

impl ProcessGroup {
    /// Joins the group through `store` as `rank` of `world`; blocks until every rank has
    /// joined (up to `timeout`). `timeout` is then the group's: a collective that waits longer
    /// for a peer fails (Gloo), or is aborted by c10d's watchdog (NCCL).
    pub fn new(
        backend: Backend,
        store: &Store,
        rank: usize,
        world: usize,
        timeout: Duration,
    ) -> Result<Self, DistError> {
        let what = || format!("creating the {backend} process group (rank {rank} of {world})");
        if world == 0 || rank >= world {
            return Err(DistError(format!("{}: no such rank", what())));
        }
        let (rank_c, world_c) = (c_count(rank, "rank")?, c_count(world, "world size")?);
        let mut out: *mut GroupHandle = std::ptr::null_mut();
        // SAFETY: `store.handle` is live; `out` is written on success only.
        check(
            unsafe {
                ncsn_dist_group_new(
                    backend.code(),
                    store.handle.as_ptr(),
                    rank_c,
                    world_c,
                    millis(timeout),
                    &mut out,
                )
            },
            what,
        )?;
        Ok(Self {
            handle: NonNull::new(out).expect("the shim returned a group"),
            rank,
            world,
            backend,
        })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world(&self) -> usize {
        self.world
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The name c10d's backend object gives itself ("gloo", "nccl").
    pub fn backend_name(&self) -> Result<String, DistError> {
        let mut name: *mut c_char = std::ptr::null_mut();
        // SAFETY: live handle; `name` is written on success only.
        check(
            unsafe { ncsn_dist_backend_name(self.handle.as_ptr(), &mut name) },
            || self.context("naming the backend"),
        )?;
        Ok(take_string(name).unwrap_or_default())
    }

    /// In place, sum over ranks; returns when the result may be used (Gloo: done; NCCL: queued
    /// on the current stream).
    pub fn all_reduce_sum(&self, t: &mut Tensor) -> Result<(), DistError> {
        self.contiguous(t, "all_reduce_sum")?;
        // SAFETY: live handle and tensor; c10d writes the sum into the tensor's storage.
        check(
            unsafe { ncsn_dist_all_reduce_sum(self.handle.as_ptr(), t.as_mut_ptr()) },
            || self.context("all_reduce_sum"),
        )
    }

    /// In place, every rank's `t` becomes rank `root`'s; returns as
    /// [`all_reduce_sum`](Self::all_reduce_sum) does.
    pub fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<(), DistError> {
        let what = format!("broadcast from rank {root}");
        self.contiguous(t, &what)?;
        if root >= self.world {
            return Err(DistError(self.context(&format!("{what}: no such rank"))));
        }
        let root_c = c_count(root, "root rank")?;
        // SAFETY: live handle and tensor.
        check(
            unsafe { ncsn_dist_broadcast(self.handle.as_ptr(), t.as_mut_ptr(), root_c) },
            || self.context(&what),
        )
    }

    /// Returns once every rank has entered the barrier.
    pub fn barrier(&self) -> Result<(), DistError> {
        // SAFETY: live handle.
        check(unsafe { ncsn_dist_barrier(self.handle.as_ptr()) }, || {
            self.context("barrier")
        })
    }

    fn context(&self, what: &str) -> String {
        format!(
            "{what} on rank {} of {} ({})",
            self.rank, self.world, self.backend
        )
    }

    /// c10d reduces a tensor's storage as one flat buffer, so it must be dense and in order.
    fn contiguous(&self, t: &Tensor, what: &str) -> Result<(), DistError> {
        if t.defined() && t.is_contiguous() {
            return Ok(());
        }
        Err(DistError(self.context(&format!(
            "{what}: the tensor must be defined and contiguous (use .contiguous() and copy back)"
        ))))
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: our one reference, released once; c10d's destructor joins its threads.
        unsafe { ncsn_dist_group_free(self.handle.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_spelled_as_torch_distributed_spells_them() {
        for b in [Backend::Gloo, Backend::Nccl] {
            assert_eq!(b.to_string().parse::<Backend>(), Ok(b));
        }
        let err = "mpi".parse::<Backend>().unwrap_err().to_string();
        assert!(
            err.contains("\"mpi\"") && err.contains("gloo or nccl"),
            "{err}"
        );
    }

    #[test]
    fn a_gloo_group_calls_itself_gloo() {
        let port = free_loopback_port().unwrap();
        let timeout = Duration::from_secs(10);
        let store = Store::tcp("127.0.0.1", port, 1, true, timeout).unwrap();
        let group = ProcessGroup::new(Backend::Gloo, &store, 0, 1, timeout).unwrap();
        assert_eq!(group.backend_name().unwrap(), "gloo");
        let mut t = Tensor::from_slice(&[1.5f32, -2.0]);
        group.all_reduce_sum(&mut t).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), [1.5, -2.0]);
    }
}
