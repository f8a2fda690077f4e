import CKVM
import KeelSystem
#if canImport(Glibc)
import Glibc
#endif

/// One KVM VM: memory slots, the in-kernel interrupt controllers and PIT, interrupt injection
/// (line, irqfd, MSI), ioeventfds, the MSR filter, and vCPU creation.
public final class KVMVirtualMachine: Sendable {
    public let system: KVMSystem
    let descriptor: OwnedDescriptor

    init(system: KVMSystem, descriptor: OwnedDescriptor) {
        self.system = system
        self.descriptor = descriptor
    }

    private var fd: Int32 { descriptor.rawValue }

    /// The x86 boilerplate every VM needs before vCPUs exist: the TSS and identity-map pages
    /// KVM reserves just below 4 GiB (inside the 32-bit hole).
    public func setSystemPages(tss: UInt64 = 0xFFFB_D000, identityMap: UInt64 = 0xFFFB_C000) throws(SystemError) {
        try checkIoctl(ckvm_ioctl_value(fd, KVM_SET_TSS_ADDR, UInt(tss)), "KVM_SET_TSS_ADDR")
        var map = identityMap
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_SET_IDENTITY_MAP_ADDR, &map), "KVM_SET_IDENTITY_MAP_ADDR")
    }

    /// Creates the in-kernel PIC pair, IO-APIC and per-vCPU LAPICs, then the PIT.
    public func createInterruptControllers() throws(SystemError) {
        try checkIoctl(ckvm_ioctl_value(fd, KVM_CREATE_IRQCHIP, 0), "KVM_CREATE_IRQCHIP")
        var pit = kvm_pit_config()
        pit.flags = UInt32(KVM_PIT_SPEAKER_DUMMY)
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_CREATE_PIT2, &pit), "KVM_CREATE_PIT2")
    }

    /// Maps guest RAM into the guest-physical address space.
    public func mapMemory(slot: UInt32, region: GuestRAM.Region) throws(SystemError) {
        var m = kvm_userspace_memory_region(slot: slot, flags: 0, guest_phys_addr: region.guestAddress,
                                            memory_size: region.size, userspace_addr: region.hostAddress)
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_SET_USER_MEMORY_REGION, &m), "KVM_SET_USER_MEMORY_REGION")
    }

    /// Drives an IO-APIC/PIC input line.
    public func setInterruptLine(_ line: UInt32, asserted: Bool) throws(SystemError) {
        var level = kvm_irq_level()
        level.irq = line
        level.level = asserted ? 1 : 0
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_IRQ_LINE, &level), "KVM_IRQ_LINE")
    }

    /// Injects an MSI (for example a SynIC interrupt to one vCPU's LAPIC) without an eventfd.
    public func signalMSI(address: UInt64, data: UInt32) throws(SystemError) {
        var msi = kvm_msi()
        msi.address_lo = UInt32(truncatingIfNeeded: address)
        msi.address_hi = UInt32(truncatingIfNeeded: address >> 32)
        msi.data = data
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_SIGNAL_MSI, &msi), "KVM_SIGNAL_MSI")
    }

    /// Replaces the VM's GSI routing table (`KVM_SET_GSI_ROUTING`). The table must repeat the
    /// chipset routes (`KVMInterruptRoute.defaultChipset`) or the PIC/IO-APIC lines stop working.
    public func setInterruptRouting(_ routes: [KVMInterruptRoute]) throws(SystemError) {
        let bytes = MemoryLayout<kvm_irq_routing>.size + routes.count * MemoryLayout<kvm_irq_routing_entry>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
        defer { raw.deallocate() }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let table = raw.assumingMemoryBound(to: kvm_irq_routing.self)
        table.pointee.nr = UInt32(routes.count)
        let entries = ckvm_routing_entries(table)!
        for (i, route) in routes.enumerated() {
            entries[i].gsi = route.gsi
            switch route.target {
            case let .irqchip(chip, pin):
                entries[i].type = UInt32(KVM_IRQ_ROUTING_IRQCHIP)
                entries[i].u.irqchip.irqchip = chip
                entries[i].u.irqchip.pin = pin
            case let .msi(address, data):
                entries[i].type = UInt32(KVM_IRQ_ROUTING_MSI)
                entries[i].u.msi.address_lo = UInt32(truncatingIfNeeded: address)
                entries[i].u.msi.address_hi = UInt32(truncatingIfNeeded: address >> 32)
                entries[i].u.msi.data = data
            }
        }
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_SET_GSI_ROUTING, raw), "KVM_SET_GSI_ROUTING")
    }

    /// Lets a write to `eventFD` raise interrupt line `gsi` without a VM exit or ioctl.
    public func attachIRQFD(_ eventFD: EventFD, gsi: UInt32) throws(SystemError) {
        var irqfd = kvm_irqfd()
        irqfd.fd = UInt32(bitPattern: eventFD.rawValue)
        irqfd.gsi = gsi
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_IRQFD, &irqfd), "KVM_IRQFD")
    }

    /// Makes a guest write to `port` (of `length` bytes, optionally only of value `match`) signal
    /// `eventFD` inside the kernel: the vCPU does not exit to user space.
    public func attachPortIOEventFD(_ eventFD: EventFD, port: UInt16, length: UInt32, match: UInt64?) throws(SystemError) {
        try portIOEventFD(eventFD, port: port, length: length, match: match, deassign: false)
    }

    /// Undoes `attachPortIOEventFD` (same arguments).
    public func detachPortIOEventFD(_ eventFD: EventFD, port: UInt16, length: UInt32, match: UInt64?) throws(SystemError) {
        try portIOEventFD(eventFD, port: port, length: length, match: match, deassign: true)
    }

    private func portIOEventFD(_ eventFD: EventFD, port: UInt16, length: UInt32, match: UInt64?,
                               deassign: Bool) throws(SystemError) {
        var e = kvm_ioeventfd()
        e.addr = UInt64(port)
        e.len = length
        e.fd = eventFD.rawValue
        e.flags = KVM_IOEVENTFD_FLAG_PIO | (match != nil ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0)
            | (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0)
        e.datamatch = match ?? 0
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_IOEVENTFD, &e), deassign ? "KVM_IOEVENTFD(deassign)" : "KVM_IOEVENTFD")
    }

    /// Enables exits to user space for MSR accesses KVM would otherwise fail or that the MSR
    /// filter denies (`KVM_CAP_X86_USER_SPACE_MSR`).
    public func enableUserSpaceMSRExits() throws(SystemError) {
        var cap = kvm_enable_cap()
        cap.cap = UInt32(KVM_CAP_X86_USER_SPACE_MSR)
        cap.args.0 = UInt64(KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_UNKNOWN)
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_ENABLE_CAP, &cap), "KVM_ENABLE_CAP(X86_USER_SPACE_MSR)")
    }

    /// Sends every read and write of the MSRs in `ranges` to user space; all others stay with KVM.
    /// At most 16 ranges (KVM's limit).
    public func filterMSRsToUserSpace(_ ranges: [ClosedRange<UInt32>]) throws(SystemError) {
        precondition(ranges.count <= 16, "KVM allows at most 16 MSR filter ranges")
        // A zero bit denies KVM's handling of that MSR, which turns the access into an exit.
        let bitmaps = ranges.map { range in
            [UInt8](repeating: 0, count: (Int(range.upperBound - range.lowerBound) + 8) / 8)
        }
        var filter = kvm_msr_filter()
        filter.flags = KVM_MSR_FILTER_DEFAULT_ALLOW
        var pointers: [UnsafeMutablePointer<UInt8>] = []
        defer { pointers.forEach { $0.deallocate() } }
        withUnsafeMutableBytes(of: &filter.ranges) { raw in
            let slots = raw.bindMemory(to: kvm_msr_filter_range.self)
            for (i, range) in ranges.enumerated() {
                let bitmap = UnsafeMutablePointer<UInt8>.allocate(capacity: bitmaps[i].count)
                bitmap.initialize(from: bitmaps[i], count: bitmaps[i].count)
                pointers.append(bitmap)
                slots[i] = kvm_msr_filter_range(flags: KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
                                                nmsrs: range.upperBound - range.lowerBound + 1,
                                                base: range.lowerBound, bitmap: bitmap)
            }
        }
        try checkIoctl(ckvm_ioctl_pointer(fd, KVM_X86_SET_MSR_FILTER, &filter), "KVM_X86_SET_MSR_FILTER")
    }

    /// Creates vCPU `id` (its APIC ID) and maps its shared run structure.
    public func createVirtualCPU(id: UInt32) throws(SystemError) -> KVMVirtualCPU {
        let vcpuFD = ckvm_ioctl_value(fd, KVM_CREATE_VCPU, UInt(id))
        try checkIoctl(vcpuFD, "KVM_CREATE_VCPU \(id)")
        return try KVMVirtualCPU(id: id, descriptor: OwnedDescriptor(adopting: vcpuFD), mmapSize: system.vcpuMmapSize)
    }
}

/// One GSI routing entry: a PIC/IO-APIC pin or an MSI.
public struct KVMInterruptRoute: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        /// chip 0 = PIC master, 1 = PIC slave, 2 = IO-APIC.
        case irqchip(chip: UInt32, pin: UInt32)
        case msi(address: UInt64, data: UInt32)
    }

    public let gsi: UInt32
    public let target: Target

    public init(gsi: UInt32, target: Target) {
        self.gsi = gsi
        self.target = target
    }

    /// The routes KVM installs with its in-kernel irqchip: GSIs 0–15 to the IO-APIC pin of the
    /// same number and to the PIC, GSIs 16–23 to the IO-APIC only.
    public static let defaultChipset: [KVMInterruptRoute] = (UInt32(0)..<24).flatMap { gsi -> [KVMInterruptRoute] in
        let ioapic = KVMInterruptRoute(gsi: gsi, target: .irqchip(chip: 2, pin: gsi))
        guard gsi < 16 else { return [ioapic] }
        return [ioapic, KVMInterruptRoute(gsi: gsi, target: .irqchip(chip: gsi < 8 ? 0 : 1, pin: gsi % 8))]
    }

    /// The first GSI free for MSI routes.
    public static let firstMSIGSI: UInt32 = 24
}
