import KeelDevices
import KeelHyperV
import KeelKVM
import KeelSystem
import KeelVM
import Synchronization
import Testing

/// HvSignalEvent from a guest loop, both ways Keel's hypercall page can deliver it: the fast
/// path (`out` to the signal port, matched in-kernel by an ioeventfd: no user-space exit) and
/// the generic hypercall port (a user-space exit through the real `HypercallPorts` and
/// `HypercallDispatcher`). Checks every signal arrives; prints the cost per signal, which
/// `scripts/bench signal` reports (`KEEL_BENCH_SIGNALS` sets the loop count).
@Suite(.serialized, .enabled(if: kvmSkipReason == nil, Comment(rawValue: kvmSkipReason ?? "")))
struct SignalEventPathTests {
    static let connectionID: UInt32 = 0x2001
    static let count: UInt32 = UInt32(Host.environment("KEEL_BENCH_SIGNALS").flatMap { Int($0) } ?? 2000)

    /// mov esi, count; L: <body>; dec esi; jnz L; hlt   (real mode, 32-bit operands)
    static func loop(_ body: [UInt8]) -> [UInt8] {
        let n = count
        let head: [UInt8] = [0x66, 0xBE, UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
        let tail: [UInt8] = [0x66, 0x4E, 0x75, UInt8(bitPattern: Int8(-(body.count + 4))), 0xF4]
        return head + body + tail
    }

    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    /// Runs until HLT; returns (exits, seconds).
    static func run(_ payload: TinyPayload, dispatcher: ExitDispatcher) -> (exits: Int, seconds: Double) {
        let start = HostClock.monotonicNanoseconds()
        var exits = 0
        while true {
            exits += 1
            let outcome = dispatcher.handle(payload.vcpu.runOnce(), on: payload.vcpu)
            if outcome != .resume || exits > Int(count) * 2 + 10 { break }
        }
        return (exits, Double(HostClock.monotonicNanoseconds() - start) / 1e9)
    }


    @Test func fastPathSignalsWithoutUserSpaceExits() throws {
        // mov eax, connection id; out 0xE4, eax
        let payload = try TinyPayload(code: Self.loop([0x66, 0xB8] + Self.le32(Self.connectionID) + [0x66, 0xE7, 0xE4]))
        let doorbell = try EventFD(nonBlocking: true)
        try payload.vm.attachPortIOEventFD(doorbell, port: 0xE4, length: 4, match: UInt64(Self.connectionID))
        let dispatcher = ExitDispatcher(bus: DeviceBus(ports: AddressMap(), mmio: AddressMap()), msrs: nil) { _ in }
        let (exits, seconds) = Self.run(payload, dispatcher: dispatcher)
        #expect(exits == 1, "every OUT should complete in the kernel; only HLT reaches user space")
        #expect(doorbell.wait() == UInt64(Self.count))
        print("SIGNAL-PATH fast count=\(Self.count) ns_per_signal=\(Int(seconds * 1e9 / Double(Self.count)))")
    }

    @Test func genericHypercallPathSignalsThroughUserSpace() throws {
        // mov ecx, 0x1005D (HvSignalEvent, fast); mov edx, connection id; out 0xE0, eax
        let body: [UInt8] = [0x66, 0xB9] + Self.le32(0x1_005D) + [0x66, 0xBA] + Self.le32(Self.connectionID)
            + [0x66, 0xE7, 0xE0]
        let payload = try TinyPayload(code: Self.loop(body))
        let received = Atomic<UInt32>(0)
        let hypercalls = HypercallDispatcher(memory: payload.ram, postMessage: { _ in .invalidConnectionID },
                                             signalEvent: { request in
                                                 guard request.connectionID == Self.connectionID else { return .invalidConnectionID }
                                                 received.add(1, ordering: .relaxed)
                                                 return .success
                                             })
        let ports = HypercallPorts(dispatcher: hypercalls, hypercallPort: 0xE0, signalEventPort: 0xE4) { _ in }
        let dispatcher = ExitDispatcher(bus: DeviceBus(ports: AddressMap(), mmio: AddressMap()), msrs: nil,
                                        hypercalls: ports) { _ in }
        let (exits, seconds) = Self.run(payload, dispatcher: dispatcher)
        #expect(exits == Int(Self.count) + 1)
        #expect(received.load(ordering: .relaxed) == Self.count)
        #expect(try payload.vcpu.registers().rax == 0, "HV_STATUS_SUCCESS in RAX")
        print("SIGNAL-PATH exit count=\(Self.count) ns_per_signal=\(Int(seconds * 1e9 / Double(Self.count)))")
    }
}

/// MSI routes for SynIC interrupts: the routing table keeps KVM's chipset routes and takes MSI
/// entries after them; an irqfd can be bound to such a route.
@Suite(.enabled(if: kvmSkipReason == nil, Comment(rawValue: kvmSkipReason ?? "")))
struct InterruptRoutingTests {
    @Test func msiRoutesExtendTheChipsetTable() throws {
        let vm = try KVMSystem().createVirtualMachine()
        try vm.createInterruptControllers()
        #expect(KVMInterruptRoute.defaultChipset.count == 16 * 2 + 8)
        let msi = KVMInterruptRoute(gsi: KVMInterruptRoute.firstMSIGSI, target: .msi(address: 0xFEE0_1000, data: 0xF3))
        try vm.setInterruptRouting(KVMInterruptRoute.defaultChipset + [msi])
        let irqfd = try EventFD()
        try vm.attachIRQFD(irqfd, gsi: msi.gsi)
        irqfd.signal()
        // The legacy lines still work after the table was replaced.
        try vm.setInterruptLine(4, asserted: true)
        try vm.setInterruptLine(4, asserted: false)
    }
}
