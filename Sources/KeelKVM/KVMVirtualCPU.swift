import CKVM
import KeelSystem
#if canImport(Glibc)
import Glibc
#endif

/// Why `KVM_RUN` returned, decoded from the shared run structure. Payloads are plain values:
/// decoding allocates nothing.
public enum VCPUExit: Sendable, Equatable {
    /// Port I/O; for string I/O `count` > 1. Data is accessed with `ioValue`/`setIOValue`.
    case io(port: UInt16, size: Int, isWrite: Bool, count: Int)
    /// MMIO outside guest RAM. Data: `mmioWriteValue` / `setMMIOReadValue`.
    case mmio(address: UInt64, size: Int, isWrite: Bool)
    case halt
    /// Triple fault (or another reason the CPU shut down).
    case shutdown
    /// `KVM_EXIT_SYSTEM_EVENT` (type is `KVM_SYSTEM_EVENT_*`).
    case systemEvent(type: UInt32)
    case internalError(suberror: UInt32)
    case failedEntry(reason: UInt64)
    /// An MSR read/write sent to user space; answer with `completeMSRRead`/`completeMSRWrite`.
    case readMSR(index: UInt32)
    case writeMSR(index: UInt32, value: UInt64)
    /// `KVM_RUN` was interrupted by a kick (or another signal).
    case interrupted
    case other(reason: UInt32)
}

/// One KVM vCPU: registers, CPUID, MSRs, LAPIC state and the run loop primitive. Used by one
/// thread at a time (its own vCPU thread), apart from the kick, which goes through a signal.
public final class KVMVirtualCPU: @unchecked Sendable {
    // @unchecked: `run` is the kernel-shared kvm_run page; only the owning vCPU thread touches it.
    public let id: UInt32
    @usableFromInline let descriptor: OwnedDescriptor
    @usableFromInline let run: UnsafeMutablePointer<kvm_run>
    private let mmapSize: Int

    init(id: UInt32, descriptor: OwnedDescriptor, mmapSize: Int) throws(SystemError) {
        let p = mmap(nil, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor.rawValue, 0)
        guard let p, p != MAP_FAILED else { throw SystemError("mmap kvm_run") }
        self.id = id
        self.descriptor = descriptor
        self.mmapSize = mmapSize
        run = p.bindMemory(to: kvm_run.self, capacity: 1)
    }

    deinit { munmap(run, mmapSize) }

    private var fd: Int32 { descriptor.rawValue }

    /// Call once on the vCPU's own thread before the first `runOnce`: routes kicks to this vCPU
    /// and unblocks the kick signal (test runners block it, and threads inherit the mask).
    public func prepareCurrentThread() {
        _ = ckvm_vcpu_thread_prepare(run)
    }

    /// Enters the guest until the next exit.
    @inlinable
    public func runOnce() -> VCPUExit {
        let rc = ckvm_ioctl_value(descriptor.rawValue, KVM_RUN, 0)
        if rc < 0 {
            let e = errno
            run.pointee.immediate_exit = 0
            if e == EINTR || e == EAGAIN { return .interrupted }
            return .failedEntry(reason: UInt64(e))
        }
        return decodeExit()
    }

    @usableFromInline
    func decodeExit() -> VCPUExit {
        let r = run.pointee
        switch Int32(r.exit_reason) {
        case KVM_EXIT_IO:
            return .io(port: r.io.port, size: Int(r.io.size), isWrite: r.io.direction == UInt8(KVM_EXIT_IO_OUT),
                       count: Int(r.io.count))
        case KVM_EXIT_MMIO:
            return .mmio(address: r.mmio.phys_addr, size: Int(r.mmio.len), isWrite: r.mmio.is_write != 0)
        case KVM_EXIT_HLT: return .halt
        case KVM_EXIT_SHUTDOWN: return .shutdown
        case KVM_EXIT_SYSTEM_EVENT: return .systemEvent(type: r.system_event.type)
        case KVM_EXIT_INTERNAL_ERROR: return .internalError(suberror: r.internal.suberror)
        case KVM_EXIT_FAIL_ENTRY: return .failedEntry(reason: r.fail_entry.hardware_entry_failure_reason)
        case KVM_EXIT_X86_RDMSR: return .readMSR(index: r.msr.index)
        case KVM_EXIT_X86_WRMSR: return .writeMSR(index: r.msr.index, value: r.msr.data)
        case KVM_EXIT_INTR: return .interrupted
        default: return .other(reason: r.exit_reason)
        }
    }

    private var ioData: UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(run) + Int(run.pointee.io.data_offset)
    }

    /// The value the guest wrote in element `index` of a port-I/O write.
    public func ioValue(at index: Int = 0) -> UInt32 {
        let size = Int(run.pointee.io.size)
        var v: UInt32 = 0
        for b in 0..<min(size, 4) {
            v |= UInt32(ioData.load(fromByteOffset: index * size + b, as: UInt8.self)) << (8 * b)
        }
        return v
    }

    /// Sets the value the guest reads for element `index` of a port-I/O read.
    public func setIOValue(_ value: UInt32, at index: Int = 0) {
        let size = Int(run.pointee.io.size)
        for b in 0..<min(size, 4) {
            ioData.storeBytes(of: UInt8(truncatingIfNeeded: value >> (8 * b)), toByteOffset: index * size + b, as: UInt8.self)
        }
    }

    /// The value of an MMIO write (little-endian, `size` bytes).
    public var mmioWriteValue: UInt64 {
        var d = run.pointee.mmio.data
        let len = Int(run.pointee.mmio.len)
        return withUnsafeBytes(of: &d) { raw in
            (0..<min(len, 8)).reduce(UInt64(0)) { $0 | UInt64(raw[$1]) << (8 * UInt64($1)) }
        }
    }

    /// Sets the value an MMIO read returns.
    public func setMMIOReadValue(_ value: UInt64) {
        withUnsafeMutableBytes(of: &run.pointee.mmio.data) { raw in
            for i in 0..<8 { raw[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
    }

    /// Answers a `.readMSR` exit; nil injects #GP into the guest.
    public func completeMSRRead(_ value: UInt64?) {
        run.pointee.msr.data = value ?? 0
        run.pointee.msr.error = value == nil ? 1 : 0
    }

    /// Answers a `.writeMSR` exit; `accepted == false` injects #GP.
    public func completeMSRWrite(accepted: Bool) {
        run.pointee.msr.error = accepted ? 0 : 1
    }

    // MARK: Registers and state

    public func registers() throws(SystemError) -> kvm_regs {
        var r = kvm_regs()
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_GET_REGS, &r), "KVM_GET_REGS")
        return r
    }

    public func setRegisters(_ regs: kvm_regs) throws(SystemError) {
        var r = regs
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_SET_REGS, &r), "KVM_SET_REGS")
    }

    public func specialRegisters() throws(SystemError) -> kvm_sregs {
        var s = kvm_sregs()
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_GET_SREGS, &s), "KVM_GET_SREGS")
        return s
    }

    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(SystemError) {
        var s = sregs
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_SET_SREGS, &s), "KVM_SET_SREGS")
    }

    /// Sets the x87 control word and MXCSR to their reset values' usual boot settings.
    public func setFPU(controlWord: UInt16, mxcsr: UInt32) throws(SystemError) {
        var f = kvm_fpu()
        f.fcw = controlWord
        f.mxcsr = mxcsr
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_SET_FPU, &f), "KVM_SET_FPU")
    }

    public func setCPUID(_ entries: [KVMCpuidEntry]) throws(SystemError) {
        let bytes = MemoryLayout<kvm_cpuid2>.size + entries.count * MemoryLayout<kvm_cpuid_entry2>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
        defer { raw.deallocate() }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let header = raw.assumingMemoryBound(to: kvm_cpuid2.self)
        header.pointee.nent = UInt32(entries.count)
        let slots = ckvm_cpuid_entries(header)!
        for (i, e) in entries.enumerated() {
            slots[i].function = e.function; slots[i].index = e.index; slots[i].flags = e.flags
            slots[i].eax = e.eax; slots[i].ebx = e.ebx; slots[i].ecx = e.ecx; slots[i].edx = e.edx
        }
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_SET_CPUID2, raw), "KVM_SET_CPUID2")
    }

    /// Writes MSRs through KVM (for MSRs KVM itself emulates, e.g. at boot).
    public func setMSRs(_ values: [(index: UInt32, value: UInt64)]) throws(SystemError) {
        let bytes = MemoryLayout<kvm_msrs>.size + values.count * MemoryLayout<kvm_msr_entry>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
        defer { raw.deallocate() }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let header = raw.assumingMemoryBound(to: kvm_msrs.self)
        header.pointee.nmsrs = UInt32(values.count)
        let slots = ckvm_msr_entries(header)!
        for (i, v) in values.enumerated() {
            slots[i].index = v.index
            slots[i].data = v.value
        }
        let rc = ckvm_ioctl_pointer(fd, KVM_SET_MSRS, raw)
        try checkIoctl(rc, "KVM_SET_MSRS")
        guard rc == values.count else {
            throw SystemError("KVM_SET_MSRS rejected MSR 0x\(String(values[Int(rc)].index, radix: 16))", errno: EINVAL)
        }
    }

    /// Reads MSRs through KVM (e.g. IA32_TSC to learn the guest's TSC offset).
    public func msrs(_ indices: [UInt32]) throws(SystemError) -> [UInt64] {
        let bytes = MemoryLayout<kvm_msrs>.size + indices.count * MemoryLayout<kvm_msr_entry>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
        defer { raw.deallocate() }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let header = raw.assumingMemoryBound(to: kvm_msrs.self)
        header.pointee.nmsrs = UInt32(indices.count)
        let slots = ckvm_msr_entries(header)!
        for (i, index) in indices.enumerated() { slots[i].index = index }
        let rc = ckvm_ioctl_pointer(fd, KVM_GET_MSRS, raw)
        try checkIoctl(rc, "KVM_GET_MSRS")
        guard rc == indices.count else {
            throw SystemError("KVM_GET_MSRS does not know MSR 0x\(String(indices[Int(rc)], radix: 16))", errno: EINVAL)
        }
        return (0..<indices.count).map { slots[$0].data }
    }

    /// The guest TSC frequency in kHz (`KVM_GET_TSC_KHZ`).
    public func tscKilohertz() throws(SystemError) -> UInt32 {
        let rc = ckvm_ioctl_value(fd, KVM_GET_TSC_KHZ, 0)
        try checkIoctl(rc, "KVM_GET_TSC_KHZ")
        return UInt32(rc)
    }

    /// The LAPIC register page (1 KiB) as KVM exposes it.
    public func localAPIC() throws(SystemError) -> [UInt8] {
        var state = kvm_lapic_state()
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_GET_LAPIC, &state), "KVM_GET_LAPIC")
        return withUnsafeBytes(of: &state.regs) { Array($0) }
    }

    public func setLocalAPIC(_ registers: [UInt8]) throws(SystemError) {
        var state = kvm_lapic_state()
        withUnsafeMutableBytes(of: &state.regs) { raw in
            for i in 0..<min(raw.count, registers.count) { raw[i] = registers[i] }
        }
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_SET_LAPIC, &state), "KVM_SET_LAPIC")
    }
}
