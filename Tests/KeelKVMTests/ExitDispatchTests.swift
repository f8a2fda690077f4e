import KeelDevices
import KeelKVM
import KeelVM
import Synchronization
import Testing

/// A port and MMIO device that records accesses and answers fixed values.
final class RecordingDevice: PortDevice, MMIODevice {
    let log = Mutex<[String]>([])
    func portRead(offset: UInt16, size: Int) -> UInt32 { log.withLock { $0.append("in \(offset)/\(size)") }; return 0x5A }
    func portWrite(offset: UInt16, size: Int, value: UInt32) { log.withLock { $0.append("out \(offset)/\(size)=\(value)") } }
    func mmioRead(offset: UInt64, size: Int) -> UInt64 { log.withLock { $0.append("read \(offset)/\(size)") }; return 0x77 }
    func mmioWrite(offset: UInt64, size: Int, value: UInt64) { log.withLock { $0.append("write \(offset)/\(size)=\(value)") } }
}

/// Answers reads of one synthetic MSR and records writes.
final class RecordingMSRs: MSRHandler {
    let writes = Mutex<[UInt64]>([])
    func readMSR(_ index: UInt32, processor: UInt32) -> UInt64? { index == 0x4000_0000 ? 0x1122_3344_5566_7788 : nil }
    func writeMSR(_ index: UInt32, value: UInt64, processor: UInt32) -> Bool {
        writes.withLock { $0.append(value) }
        return index == 0x4000_0001
    }
}

@Suite(.enabled(if: kvmSkipReason == nil, Comment(rawValue: kvmSkipReason ?? "")))
struct ExitDispatchTests {
    @Test func portMMIOAndMSRExitsReachDevices() throws {
        let code: [UInt8] = [
            0xBA, 0x10, 0x02,                    // mov dx, 0x210
            0xB0, 0x41,                          // mov al, 0x41
            0xEE,                                // out dx, al
            0xEC,                                // in al, dx
            0xA2, 0x00, 0x05,                    // mov [0x500], al
            0xBA, 0x34, 0x12,                    // mov dx, 0x1234 (no device)
            0xEC,                                // in al, dx
            0xA2, 0x01, 0x05,                    // mov [0x501], al
            0xB8, 0x00, 0x20,                    // mov ax, 0x2000
            0x8E, 0xD8,                          // mov ds, ax
            0xC6, 0x06, 0x10, 0x00, 0x55,        // mov byte [0x10], 0x55   (MMIO 0x20010)
            0xA0, 0x20, 0x00,                    // mov al, [0x20]          (MMIO 0x20020)
            0x66, 0xB9, 0x00, 0x00, 0x00, 0x40,  // mov ecx, 0x40000000
            0x0F, 0x32,                          // rdmsr
            0x66, 0xB9, 0x01, 0x00, 0x00, 0x40,  // mov ecx, 0x40000001
            0x0F, 0x30,                          // wrmsr
            0x88, 0xC3,                          // mov bl, al
            0x31, 0xC0,                          // xor ax, ax
            0x8E, 0xD8,                          // mov ds, ax
            0x88, 0x1E, 0x02, 0x05,              // mov [0x502], bl (low byte of rdmsr's eax)
            0xF4,                                // hlt
        ]
        let payload = try TinyPayload(code: code, msrFilter: [0x4000_0000...0x4000_01FF])
        let device = RecordingDevice()
        var ports = AddressMap<any PortDevice>()
        try ports.insert(base: 0x210, length: 8, device: device)
        var mmio = AddressMap<any MMIODevice>()
        try mmio.insert(base: 0x20000, length: 0x100, device: device)
        let unclaimed = Mutex<[UnclaimedAccess]>([])
        let msrs = RecordingMSRs()
        let dispatcher = ExitDispatcher(bus: DeviceBus(ports: ports, mmio: mmio), msrs: msrs) { access in
            unclaimed.withLock { $0.append(access) }
        }
        var outcome = ExitOutcome.resume
        for _ in 0..<20 {
            outcome = dispatcher.handle(payload.vcpu.runOnce(), on: payload.vcpu)
            if outcome != .resume { break }
        }
        #expect(outcome == .halted)
        let log = device.log.withLock { $0 }
        let unclaimedSeen = unclaimed.withLock { $0 }
        let msrWrites = msrs.writes.withLock { $0 }
        #expect(log == ["out 0/1=65", "in 0/1", "write 16/1=85", "read 32/1"])
        #expect(try payload.ram.read(at: 0x500, count: 3) == [0x5A, 0xFF, 0x88])
        #expect(unclaimedSeen == [UnclaimedAccess(kind: .port, address: 0x1234, size: 1, isWrite: false, value: 0)])
        // wrmsr writes edx:eax, still holding what rdmsr returned.
        #expect(msrWrites == [0x1122_3344_5566_7788])
    }

    @Test func unknownSyntheticMSRInjectsGeneralProtectionFault() throws {
        // rdmsr of an MSR nobody handles: the guest takes #GP (vector 13). The real-mode
        // interrupt vector table sends it to a HLT at 0x2000.
        let code: [UInt8] = [0x66, 0xB9, 0x50, 0x00, 0x00, 0x40, 0x0F, 0x32, 0xF4]
        let payload = try TinyPayload(code: code, msrFilter: [0x4000_0000...0x4000_01FF])
        try payload.ram.write([0x00, 0x20, 0x00, 0x00], at: 13 * 4)
        try payload.ram.write([0xF4], at: 0x2000)
        let unclaimed = Mutex<[UnclaimedAccess]>([])
        let dispatcher = ExitDispatcher(bus: DeviceBus(ports: .init(), mmio: .init()), msrs: RecordingMSRs()) { access in
            unclaimed.withLock { $0.append(access) }
        }
        var outcome = ExitOutcome.resume
        for _ in 0..<10 {
            outcome = dispatcher.handle(payload.vcpu.runOnce(), on: payload.vcpu)
            if outcome != .resume { break }
        }
        #expect(outcome == .halted)
        #expect(try payload.vcpu.registers().rip == 0x2001)
        let seen = unclaimed.withLock { $0 }
        #expect(seen == [UnclaimedAccess(kind: .msr, address: 0x4000_0050, size: 8, isWrite: false, value: 0)])
    }
}
