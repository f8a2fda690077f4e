import KeelDevices
import KeelKVM
import KeelPlatform

/// An IO-APIC/PIC input pin driven through KVM's in-kernel interrupt controllers.
struct KVMInterruptLine: InterruptLine {
    let vm: KVMVirtualMachine
    let line: UInt32
    let log: @Sendable (String) -> Void
    func setLevel(_ asserted: Bool) {
        do { try vm.setInterruptLine(line, asserted: asserted) } catch {
            log("interrupt line \(line): \(error)")
        }
    }
}

/// The emulated PC chipset of a Keel partition and its port map:
/// COM1 0x3F8 (IRQ 4), i8042 0x60/0x64 (IRQ 1/12), CMOS RTC 0x70, PCI config 0xCF8,
/// ACPI PM1 0x600/0x604, reset 0xCF9 and 0x92, POST 0x80, pvpanic 0x505.
struct Chipset: Sendable {
    let bus: DeviceBus
    let serial: Serial16550
    /// DSDT device nodes describing chipset devices Linux cannot find by legacy probing.
    let dsdtDevices: [UInt8]

    init(vm: KVMVirtualMachine, rtcOffsetSeconds: Int64, consoleOutput: @escaping @Sendable (UInt8) -> Void,
         log: @escaping @Sendable (String) -> Void, systemEvent: @escaping SystemEventSink,
         panic: @escaping @Sendable (UInt32) -> Void) throws {
        let guestLog = RateLimitedLog(sink: log)
        func line(_ n: UInt32) -> KVMInterruptLine { KVMInterruptLine(vm: vm, line: n, log: log) }

        serial = Serial16550(irq: line(4), log: guestLog, output: consoleOutput)
        let i8042 = I8042Controller(keyboardIRQ: line(1), auxIRQ: line(12), events: systemEvent, log: guestLog)
        let power = ACPIPowerManagement(s5SleepType: ACPIPlatform.s5SleepType, events: systemEvent, log: guestLog)

        var ports = AddressMap<any PortDevice>()
        try ports.insert(base: 0x3F8, length: 8, device: serial)
        try ports.insert(base: 0x60, length: 1, device: i8042.dataPort)
        try ports.insert(base: 0x64, length: 1, device: i8042.commandPort)
        try ports.insert(base: 0x70, length: 2, device: CMOSClock(clock: { CMOSClock.systemTime() &+ rtcOffsetSeconds }))
        // The host bridge's range covers 0xCF9, the reset control register.
        try ports.insert(base: 0xCF8, length: 8, device: PCIHostBridge(resetControl: ResetControl(events: systemEvent)))
        try ports.insert(base: UInt64(ACPIPlatform.pm1EventPort), length: UInt64(ACPIPlatform.pm1EventLength), device: power.eventBlock)
        try ports.insert(base: UInt64(ACPIPlatform.pm1ControlPort), length: UInt64(ACPIPlatform.pm1ControlLength), device: power.controlBlock)
        try ports.insert(base: 0x80, length: 1, device: DebugPort())
        try ports.insert(base: 0x92, length: 1, device: SystemControlPortA(events: systemEvent))
        try ports.insert(base: UInt64(PanicNotifier.defaultPort), length: 1, device: PanicNotifier(onPanic: panic))
        bus = DeviceBus(ports: ports, mmio: AddressMap())

        dsdtDevices = try ACPIDevices.pciHostBridge() + AML.scope("\\_SB_", [
            AML.device("PEVT", [
                AML.name("_HID", AML.string("QEMU0001")),
                AML.name("_STA", AML.integer(0x0F)),
                AML.name("_CRS", AML.resourceTemplate([
                    AML.ioPort(minimum: PanicNotifier.defaultPort, maximum: PanicNotifier.defaultPort, alignment: 1, length: 1),
                ])),
            ]),
        ])
    }
}
