import KeelSystem
import Synchronization
import Testing
@testable import KeelVMBus

/// The channel API VSPs use: draining the guest→host ring, sending with signalling, the
/// backlog for a guest that does not read, and a guest that corrupts its ring.
@Suite struct VMBusChannelTests {
    /// Ring pages: guest→host at 0x10000 (4 pages), host→guest at 0x20000 (4 pages).
    static func open(relid: UInt32 = 5) -> VMBusChannelOpen {
        VMBusChannelOpen(relid: relid, openID: relid, classID: VMBusDeviceClass.heartbeat, instanceID: .zero,
                         signalConnectionID: VMBusServer.signalConnectionID(relid: relid), targetVP: 1,
                         ringGPADL: 0xE1E10, guestToHostRing: (0..<4).map { 0x10000 + $0 * 4096 },
                         hostToGuestRing: (0..<4).map { 0x20000 + $0 * 4096 }, userData: [])
    }

    final class Signals: Sendable {
        let list = Mutex<[[UInt32]]>([])
        func record(_ vp: UInt32, _ relid: UInt32) { list.withLock { $0.append([vp, relid]) } }
        var count: Int { list.withLock { $0.count } }
    }

    func send(_ channel: inout VMBusChannel, _ packet: VMBusPacket) -> Bool { channel.send(packet) }

    func packet(_ id: UInt64, size: Int = 24) -> VMBusPacket {
        VMBusPacket(type: .dataInBand, transactionID: id, payload: [UInt8](repeating: UInt8(id & 0xFF), count: size))
    }

    @Test func receivesWhatTheGuestWroteAndSignalsTheTargetVP() throws {
        let memory = makeMemory()
        let signals = Signals()
        var channel = try VMBusChannel(open: Self.open(), memory: memory) { signals.record($0, $1) }
        // The guest side: a writer on the guest→host ring, a reader on the host→guest ring.
        var guestOut = try RingBuffer(pageAddresses: Self.open().guestToHostRing, memory: memory)
        var guestIn = try RingBuffer(pageAddresses: Self.open().hostToGuestRing, memory: memory)
        for id in 1...3 { _ = try guestOut.writePacket(packet(UInt64(id))) }
        let received = channel.receive()
        #expect(received.map(\.transactionID) == [1, 2, 3])
        #expect(try memory.loadInteger(UInt32.self, at: 0x10000 + RingBuffer.Control.interruptMask) == 0,
                "the host unmasks after draining")
        #expect(send(&channel, packet(9)))
        #expect(signals.list.withLock { $0 } == [[1, 5]], "signal the channel's target VP with its relid")
        #expect(send(&channel, packet(10)))
        #expect(signals.count == 1, "no second signal while the guest has not read")
        #expect(try guestIn.readPacket()?.packet.transactionID == 9)
        #expect(try guestIn.readPacket()?.packet.transactionID == 10)
        channel.retarget(to: 0)
        #expect(send(&channel, packet(11)))
        #expect(signals.list.withLock { $0.last } == [0, 5])
    }

    /// The loop's batching: packets written while the host holds the mask raise no signal, and
    /// unmasking reports them, so they are read rather than left until the next signal.
    @Test func maskHeldBetweenDrainsThenUnmaskRechecks() throws {
        let memory = makeMemory()
        var channel = try VMBusChannel(open: Self.open(), memory: memory) { _, _ in }
        var guestOut = try RingBuffer(pageAddresses: Self.open().guestToHostRing, memory: memory)
        let mask = 0x10000 + RingBuffer.Control.interruptMask
        _ = try guestOut.writePacket(packet(1))
        let first = channel.receiveMasked(limit: 8)
        #expect(first.map(\.transactionID) == [1])
        #expect(try memory.loadInteger(UInt32.self, at: mask) == 1, "still masked after an empty ring")
        guard case .written(let signal) = try guestOut.writePacket(packet(2)) else { Issue.record("ring full"); return }
        #expect(!signal, "the guest must not signal while the host holds the mask")
        let arrived = channel.unmask()
        #expect(arrived, "unmasking finds the packet written meanwhile")
        let second = channel.receiveMasked(limit: 8)
        #expect(second.map(\.transactionID) == [2])
        let arrivedAgain = channel.unmask()
        #expect(!arrivedAgain)
        #expect(try memory.loadInteger(UInt32.self, at: mask) == 0)
        _ = try guestOut.writePacket(packet(3))
        _ = try guestOut.writePacket(packet(4))
        let cut = channel.receive(limit: 1)
        #expect(cut.map(\.transactionID) == [3])
        #expect(try memory.loadInteger(UInt32.self, at: mask) == 1, "a drain cut at its limit stays masked")
        let rest = channel.receive()
        #expect(rest.map(\.transactionID) == [4])
        #expect(try memory.loadInteger(UInt32.self, at: mask) == 0)
    }

    /// The loop's burst mode: the interrupt the first packet owes is held until released, raised
    /// once for the whole burst, and not at all when nothing was owed.
    @Test func heldSignalIsRaisedOnceOnRelease() throws {
        let memory = makeMemory()
        let signals = Signals()
        var channel = try VMBusChannel(open: Self.open(), memory: memory) { signals.record($0, $1) }
        var guestIn = try RingBuffer(pageAddresses: Self.open().hostToGuestRing, memory: memory)
        channel.holdsSignals = true
        #expect(send(&channel, packet(1)))
        #expect(send(&channel, packet(2)))
        #expect(signals.count == 0, "held while the burst goes on")
        channel.releaseSignal()
        #expect(signals.list.withLock { $0 } == [[1, 5]])
        channel.releaseSignal()
        #expect(signals.count == 1, "nothing more owed")
        #expect(try guestIn.readPacket()?.packet.transactionID == 1)
        #expect(try guestIn.readPacket()?.packet.transactionID == 2)
        #expect(send(&channel, packet(3)))
        channel.holdsSignals = false
        channel.releaseSignal()
        #expect(signals.count == 2, "the emptied ring owed one more")
        #expect(send(&channel, packet(4)))
        #expect(signals.count == 2, "the guest has not read packet 3: no new interrupt is owed")
    }

    @Test func aGuestThatNeverReadsFillsTheBacklogThenLosesPackets() throws {
        let memory = makeMemory()
        var channel = try VMBusChannel(open: Self.open(), memory: memory) { _, _ in }
        var accepted = 0
        for id in 0..<(VMBusChannel.backlogLimit + 400) where channel.send(packet(UInt64(id), size: 1000)) { accepted += 1 }
        // 12 KiB of ring holds 11 such packets; the backlog holds the limit; the rest are dropped.
        #expect(accepted == 11 + VMBusChannel.backlogLimit)
        #expect(channel.backlogCount == VMBusChannel.backlogLimit)
        #expect(channel.droppedPackets == 400 - 11)
        #expect(channel.failure == nil)
        // Once the guest reads, the backlog drains on the next receive.
        var guestIn = try RingBuffer(pageAddresses: Self.open().hostToGuestRing, memory: memory)
        for _ in 0..<5 { _ = try guestIn.readPacket() }
        _ = channel.receive()
        #expect(channel.backlogCount == VMBusChannel.backlogLimit - 5)
    }

    @Test func corruptIndicesBreakOnlyThisChannel() throws {
        let memory = makeMemory()
        var channel = try VMBusChannel(open: Self.open(), memory: memory) { _, _ in }
        try memory.storeInteger(UInt32(0xFFFF_FFF8), at: 0x10000 + RingBuffer.Control.writeIndex)
        #expect(channel.receive().isEmpty)
        #expect(channel.failure != nil)
        #expect(!send(&channel, packet(1)), "a broken channel sends nothing")
        #expect(channel.receive().isEmpty)
    }

    @Test func ringPagesOutsideGuestMemoryFailWithoutTouchingAnything() throws {
        let memory = makeMemory()
        var open = Self.open()
        open = VMBusChannelOpen(relid: 5, openID: 5, classID: open.classID, instanceID: .zero, signalConnectionID: 0x2005,
                                targetVP: 0, ringGPADL: 1, guestToHostRing: [0x7FFF_F000, 0x8000_0000],
                                hostToGuestRing: open.hostToGuestRing, userData: [])
        var channel = try VMBusChannel(open: open, memory: memory) { _, _ in }
        #expect(channel.receive().isEmpty)
        #expect(channel.failure != nil)
    }
}
