import Synchronization
import Testing
@testable import KeelDevices

private func address(bus: UInt32 = 0, device: UInt32, function: UInt32 = 0, register: UInt32) -> UInt32 {
    0x8000_0000 | bus << 16 | device << 11 | function << 8 | register
}

private final class FakeFunction: PCIFunction {
    let space: Mutex<PCIConfigSpace>
    init() {
        var space = PCIConfigSpace(vendorID: 0x1AF4, deviceID: 0x1041, classCode: 0x02_0000)
        space.setWritable(offset: 0x3C, size: 1, mask: 0xFF)            // interrupt line
        space.set(offset: 0x06, size: 2, value: 0x0110)
        space.writeOneToClear[0x07] = 0x01
        self.space = Mutex(space)
    }
    func configRead(offset: Int, size: Int) -> UInt32 { space.withLock { $0.read(offset: offset, size: size) } }
    func configWrite(offset: Int, size: Int, value: UInt32) {
        space.withLock { $0.write(offset: offset, size: size, value: value) }
    }
}

@Suite struct PCIHostBridgeTests {
    @Test func linuxType1Probe() {
        let pci = PCIHostBridge()
        pci.portWrite(offset: 3, size: 1, value: 0x01)     // outb(0x01, 0xCFB): ignored
        pci.portWrite(offset: 0, size: 4, value: 0x8000_0000)
        #expect(pci.portRead(offset: 0, size: 4) == 0x8000_0000)
        pci.portWrite(offset: 0, size: 4, value: 0xFFFF_FFFF)
        #expect(pci.portRead(offset: 0, size: 4) == 0x80FF_FFFC)   // reserved bits read 0
    }

    @Test func hostBridgeIdentity() {
        let pci = PCIHostBridge()
        pci.portWrite(offset: 0, size: 4, value: address(device: 0, register: 0))
        #expect(pci.portRead(offset: 4, size: 4) == 0x1237_8086)
        #expect(pci.portRead(offset: 4, size: 2) == 0x8086)
        #expect(pci.portRead(offset: 6, size: 2) == 0x1237)
        #expect(pci.portRead(offset: 5, size: 1) == 0x80)
        pci.portWrite(offset: 0, size: 4, value: address(device: 0, register: 8))
        #expect(pci.portRead(offset: 4, size: 4) >> 8 == 0x06_0000)
        #expect(pci.portRead(offset: 7, size: 1) == 0x06)
        pci.portWrite(offset: 0, size: 4, value: address(device: 0, register: 0x0C))
        #expect(pci.portRead(offset: 6, size: 1) == 0x00)          // header type 0
        // Read-only fields ignore writes.
        pci.portWrite(offset: 0, size: 4, value: address(device: 0, register: 0))
        pci.portWrite(offset: 4, size: 4, value: 0xDEAD_BEEF)
        #expect(pci.portRead(offset: 4, size: 4) == 0x1237_8086)
        pci.portWrite(offset: 0, size: 4, value: address(device: 0, register: 0x08))
        pci.portWrite(offset: 4, size: 4, value: 0)
        #expect(pci.portRead(offset: 4, size: 4) >> 8 == 0x06_0000)
    }

    @Test func absentAndDisabled() {
        let pci = PCIHostBridge()
        pci.portWrite(offset: 0, size: 4, value: address(device: 3, register: 0))
        #expect(pci.portRead(offset: 4, size: 4) == 0xFFFF_FFFF)
        #expect(pci.portRead(offset: 4, size: 2) == 0xFFFF)
        pci.portWrite(offset: 0, size: 4, value: address(device: 0, function: 1, register: 0))
        #expect(pci.portRead(offset: 4, size: 4) == 0xFFFF_FFFF)
        pci.portWrite(offset: 0, size: 4, value: address(bus: 1, device: 0, register: 0))
        #expect(pci.portRead(offset: 4, size: 4) == 0xFFFF_FFFF)
        pci.portWrite(offset: 0, size: 4, value: 0x0000_0000)     // enable bit clear
        #expect(pci.portRead(offset: 4, size: 4) == 0xFFFF_FFFF)
        // Narrow accesses to the address register are not CONFIG_ADDRESS.
        #expect(pci.portRead(offset: 0, size: 2) == 0xFFFF)
        #expect(pci.portRead(offset: 2, size: 1) == 0xFF)
    }

    @Test func attachedFunction() throws {
        let pci = PCIHostBridge()
        let fake = FakeFunction()
        try pci.attach(fake, device: 3, function: 0)
        #expect(throws: PCIHostBridge.AttachError.occupied(device: 3, function: 0)) {
            try pci.attach(FakeFunction(), device: 3, function: 0)
        }
        #expect(throws: PCIHostBridge.AttachError.invalidSlot(device: 32, function: 0)) {
            try pci.attach(FakeFunction(), device: 32, function: 0)
        }
        #expect(throws: PCIHostBridge.AttachError.occupied(device: 0, function: 0)) {
            try pci.attach(FakeFunction(), device: 0, function: 0)
        }
        pci.portWrite(offset: 0, size: 4, value: address(device: 3, register: 0))
        #expect(pci.portRead(offset: 4, size: 4) == 0x1041_1AF4)
        // Byte write at 0xCFC + 0 of dword 0x3C: writable interrupt line.
        pci.portWrite(offset: 0, size: 4, value: address(device: 3, register: 0x3C))
        pci.portWrite(offset: 4, size: 4, value: 0xFFFF_FF0B)
        #expect(pci.portRead(offset: 4, size: 4) == 0x0000_000B)
        // Word access at 0xCFE reaches register 0x06 (status): write-one-to-clear bit 8.
        pci.portWrite(offset: 0, size: 4, value: address(device: 3, register: 0x04))
        #expect(pci.portRead(offset: 6, size: 2) == 0x0110)
        pci.portWrite(offset: 6, size: 2, value: 0x0100)
        #expect(pci.portRead(offset: 6, size: 2) == 0x0010)
        #expect(pci.function(device: 3, function: 0) === fake)
    }

    @Test func resetControlSharesThePort() {
        let events = Recorder<SystemEvent>()
        let pci = PCIHostBridge(resetControl: ResetControl(events: events.sink))
        #expect(pci.portRead(offset: 1, size: 1) == 0)
        pci.portWrite(offset: 1, size: 1, value: 0x02)
        #expect(pci.portRead(offset: 1, size: 1) == 0x02)
        #expect(events.all.isEmpty)
        pci.portWrite(offset: 1, size: 1, value: 0x06)
        #expect(events.all == [.reset])
        // A dword at 0xCF8 is still CONFIG_ADDRESS.
        pci.portWrite(offset: 0, size: 4, value: 0x8000_0400)
        #expect(events.all == [.reset])
        #expect(pci.portRead(offset: 0, size: 4) == 0x8000_0400)
    }

    @Test func garbageNeverCrashes() throws {
        let pci = PCIHostBridge()
        try pci.attach(FakeFunction(), device: 31, function: 7)
        for addr: UInt32 in [address(device: 0, register: 0xFC), address(device: 31, function: 7, register: 0xFC),
                             0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000_0000] {
            pci.portWrite(offset: 0, size: 4, value: addr)
            pci.hammer(length: 8)
        }
        // Misaligned data accesses read all-ones.
        pci.portWrite(offset: 0, size: 4, value: address(device: 0, register: 0))
        #expect(pci.portRead(offset: 5, size: 2) == 0xFFFF)
        #expect(pci.portRead(offset: 6, size: 4) == 0xFFFF_FFFF)
        #expect(pci.portRead(offset: 4, size: 4) == 0x1237_8086)
    }
}
