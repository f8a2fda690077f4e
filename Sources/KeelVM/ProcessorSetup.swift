import CKVM
import KeelKVM
import KeelPlatform

/// Initial vCPU state: CPUID, boot MSRs, FPU, LAPIC virtual-wire setup, and for the boot
/// processor the 64-bit register state the Linux boot protocol expects.
enum ProcessorSetup {
    static let mtrrDefaultType: UInt32 = 0x2FF
    static let miscEnable: UInt32 = 0x1A0

    static func configure(_ vcpu: KVMVirtualCPU, index: Int, count: Int, hostCPUID: [CpuidEntry],
                          hypervisorLeaves: [CpuidEntry]) throws {
        let table = try Cpuid.vcpuTable(hostSupported: hostCPUID, vcpuIndex: index, vcpuCount: count,
                                        hypervisorLeaves: hypervisorLeaves)
        try vcpu.setCPUID(table.map {
            KVMCpuidEntry(function: $0.function, index: $0.index, flags: $0.flags,
                          eax: $0.eax, ebx: $0.ebx, ecx: $0.ecx, edx: $0.edx)
        })
        // MTRRs enabled with write-back default (as firmware leaves them); fast strings on.
        try vcpu.setMSRs([(mtrrDefaultType, 0x806), (miscEnable, 1)])
        try vcpu.setFPU(controlWord: 0x37F, mxcsr: 0x1F80)
        try configureLocalAPIC(vcpu, bootProcessor: index == 0)
    }

    /// LINT1 as NMI on every processor and, on the boot processor only, LINT0 as ExtINT (the
    /// PIC's virtual wire), as PC firmware leaves them.
    static func configureLocalAPIC(_ vcpu: KVMVirtualCPU, bootProcessor: Bool) throws {
        var regs = try vcpu.localAPIC()
        func setDeliveryMode(_ offset: Int, _ mode: UInt32) {
            var v = UInt32(regs[offset]) | UInt32(regs[offset + 1]) << 8 | UInt32(regs[offset + 2]) << 16 | UInt32(regs[offset + 3]) << 24
            v = (v & ~0x700) | (mode << 8)
            for i in 0..<4 { regs[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
        }
        if bootProcessor { setDeliveryMode(0x350, 0b111) }  // LVT LINT0: ExtINT
        setDeliveryMode(0x360, 0b100)  // LVT LINT1: NMI
        try vcpu.setLocalAPIC(regs)
    }

    /// The boot processor enters the kernel's 64-bit entry with paging on, flat segments from
    /// Keel's GDT and RSI pointing at the zero page.
    static func enterLongMode(_ vcpu: KVMVirtualCPU, entry: BootEntry) throws {
        var sregs = try vcpu.specialRegisters()
        sregs.cs = segment(GDT.code)
        let data = segment(GDT.data)
        sregs.ds = data; sregs.es = data; sregs.fs = data; sregs.gs = data; sregs.ss = data
        sregs.gdt.base = BootLayout.gdtAddress
        sregs.gdt.limit = GDT.limit
        sregs.cr0 = LongModeRegisters.cr0
        sregs.cr3 = PageTables.cr3
        sregs.cr4 = LongModeRegisters.cr4
        sregs.efer = LongModeRegisters.efer
        try vcpu.setSpecialRegisters(sregs)

        var regs = kvm_regs()
        regs.rip = entry.instructionPointer
        regs.rsi = entry.zeroPage
        regs.rsp = entry.stackPointer
        regs.rbp = entry.stackPointer
        regs.rflags = LongModeRegisters.rflags
        try vcpu.setRegisters(regs)
    }

    static func segment(_ d: SegmentDescriptor) -> kvm_segment {
        var s = kvm_segment()
        s.base = UInt64(d.base)
        s.limit = d.effectiveLimit
        s.selector = d.selector
        s.type = d.type
        s.present = d.present
        s.dpl = d.dpl
        s.db = d.db
        s.s = d.s
        s.l = d.l
        s.g = d.g
        s.avl = d.avl
        return s
    }
}
