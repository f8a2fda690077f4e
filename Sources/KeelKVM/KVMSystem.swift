import CKVM
import KeelSystem
#if canImport(Glibc)
import Glibc
#endif

/// One CPUID leaf as KVM reports and accepts it. Mirrors `kvm_cpuid_entry2` without its padding.
public struct KVMCpuidEntry: Sendable, Equatable {
    public var function: UInt32
    public var index: UInt32
    public var flags: UInt32
    public var eax: UInt32
    public var ebx: UInt32
    public var ecx: UInt32
    public var edx: UInt32

    public init(function: UInt32, index: UInt32, flags: UInt32, eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32) {
        self.function = function; self.index = index; self.flags = flags
        self.eax = eax; self.ebx = ebx; self.ecx = ecx; self.edx = edx
    }
}

@inline(__always)
func checkIoctl(_ rc: Int32, _ name: @autoclosure () -> String) throws(SystemError) {
    if rc < 0 { throw SystemError(name()) }
}

/// `/dev/kvm`: capability queries, host-supported CPUID, VM creation.
public final class KVMSystem: Sendable {
    let descriptor: OwnedDescriptor
    /// Size of each vCPU's shared `kvm_run` mapping.
    public let vcpuMmapSize: Int

    public init(path: String = "/dev/kvm") throws(SystemError) {
        descriptor = try OwnedDescriptor.open(path, flags: O_RDWR)
        let version = ckvm_ioctl_value(descriptor.rawValue, KVM_GET_API_VERSION, 0)
        guard version == KVM_API_VERSION else { throw SystemError("KVM API version \(version), need \(KVM_API_VERSION)", errno: EINVAL) }
        let size = ckvm_ioctl_value(descriptor.rawValue, KVM_GET_VCPU_MMAP_SIZE, 0)
        try checkIoctl(size, "KVM_GET_VCPU_MMAP_SIZE")
        vcpuMmapSize = Int(size)
        _ = ckvm_install_kick_handler()
    }

    /// `KVM_CHECK_EXTENSION`: 0 when unsupported, otherwise a capability-specific value.
    public func checkExtension(_ capability: Int32) -> Int32 {
        max(0, ckvm_ioctl_value(descriptor.rawValue, KVM_CHECK_EXTENSION, UInt(capability)))
    }

    /// The CPUID leaves this host's KVM can expose to a guest.
    public func supportedCPUID() throws(SystemError) -> [KVMCpuidEntry] {
        try readCPUID(maxEntries: 256, request: KVM_GET_SUPPORTED_CPUID, fd: descriptor.rawValue)
    }

    public func createVirtualMachine() throws(SystemError) -> KVMVirtualMachine {
        let fd = ckvm_ioctl_value(descriptor.rawValue, KVM_CREATE_VM, 0)
        try checkIoctl(fd, "KVM_CREATE_VM")
        return KVMVirtualMachine(system: self, descriptor: OwnedDescriptor(adopting: fd))
    }

    /// The signal Keel uses to kick vCPU threads out of `KVM_RUN`.
    public static var kickSignal: Int32 { ckvm_kick_signal() }
}

func readCPUID(maxEntries: Int, request: UInt, fd: Int32) throws(SystemError) -> [KVMCpuidEntry] {
    let bytes = MemoryLayout<kvm_cpuid2>.size + maxEntries * MemoryLayout<kvm_cpuid_entry2>.stride
    let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
    defer { raw.deallocate() }
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    let header = raw.assumingMemoryBound(to: kvm_cpuid2.self)
    header.pointee.nent = UInt32(maxEntries)
    try checkIoctl(ckvm_ioctl_pointer(fd, request, raw), "KVM_GET_SUPPORTED_CPUID")
    let entries = ckvm_cpuid_entries(header)!
    return (0..<Int(header.pointee.nent)).map { i in
        let e = entries[i]
        return KVMCpuidEntry(function: e.function, index: e.index, flags: e.flags,
                             eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx)
    }
}
