import KeelSystem
import Testing
@testable import KeelVMBus

@Suite struct RingBufferTests {
    /// A ring of one control page and two data pages, deliberately non-contiguous and reversed.
    static let pages: [UInt64] = [0x10000, 0x30000, 0x20000]

    func pair(_ memory: BufferGuestMemory) throws -> (writer: RingBuffer, reader: RingBuffer) {
        (try RingBuffer(pageAddresses: Self.pages, memory: memory), try RingBuffer(pageAddresses: Self.pages, memory: memory))
    }

    func packet(_ size: Int, id: UInt64) -> VMBusPacket {
        VMBusPacket(type: .dataInBand, flags: 1, transactionID: id, payload: (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ Int(id)) })
    }

    @Test func packetLayout() {
        let p = VMBusPacket(type: .dataInBand, transactionID: 0x1122, payload: [UInt8](repeating: 0xAA, count: 44))
        #expect(p.bytes.count == 64)
        #expect(Array(p.bytes[0..<8]) == [6, 0, 2, 0, 8, 0, 0, 0])
        #expect(p.payload.count == 48)
        #expect(p.ringSize == 72)
    }

    @Test func writeReadWithWraparoundAcrossPages() throws {
        let memory = makeMemory()
        var (writer, reader) = try pair(memory)
        #expect(writer.dataSize == 8192)
        var id: UInt64 = 0
        // Enough traffic to wrap several times with packets that straddle page and ring ends.
        for round in 0..<50 {
            let sizes = [100, 1000, 3000 + round]
            for size in sizes {
                id += 1
                guard case .written = try writer.writePacket(packet(size, id: id)) else {
                    Issue.record("ring full in round \(round)")
                    return
                }
            }
            for size in sizes {
                let result = try #require(try reader.readPacket())
                #expect(result.packet.transactionID == id - UInt64(sizes.count) + UInt64(sizes.firstIndex(of: size) ?? 0) + 1)
                #expect(result.packet.completionRequested)
                #expect(Array(result.packet.payload.prefix(size)) == packet(size, id: result.packet.transactionID).payload.prefix(size).map { $0 })
            }
            #expect(try reader.readPacket() == nil)
        }
        // The trailer holds the packet's start offset in the upper half.
        let write = try memory.loadInteger(UInt32.self, at: Self.pages[0])
        #expect(write % 8 == 0 && Int(write) < 8192)
    }

    @Test func signalOnlyWhenEmptyAndUnmasked() throws {
        let memory = makeMemory()
        var (writer, reader) = try pair(memory)
        #expect(try writer.writePacket(packet(8, id: 1)) == .written(signalReader: true))
        #expect(try writer.writePacket(packet(8, id: 2)) == .written(signalReader: false))
        _ = try reader.readPacket()
        _ = try reader.readPacket()
        try memory.storeInteger(UInt32(1), at: Self.pages[0] + RingBuffer.Control.interruptMask)
        #expect(try writer.writePacket(packet(8, id: 3)) == .written(signalReader: false))
        try memory.storeInteger(UInt32(0), at: Self.pages[0] + RingBuffer.Control.interruptMask)
        _ = try reader.readPacket()
        #expect(try writer.writePacket(packet(8, id: 4)) == .written(signalReader: true))
    }

    @Test func guestThatNeverReadsGetsFullNotGrowth() throws {
        let memory = makeMemory()
        var (writer, reader) = try pair(memory)
        var written = 0
        var result = RingBuffer.WriteResult.written(signalReader: false)
        for id in 0..<1000 {
            result = try writer.writePacket(packet(1000, id: UInt64(id)))
            guard case .written = result else { break }
            written += 1
        }
        #expect(written == 7)  // 7 × 1024 = 7168; an eighth would fill the ring completely
        #expect(result == .full(required: 1024))
        #expect(try memory.loadInteger(UInt32.self, at: Self.pages[0] + RingBuffer.Control.pendingSendSize) == 1024)
        #expect(try writer.bytesAvailableToWrite() == 8192 - 7168)
        // The guest reads one packet: free goes 1024 → 2048, past the 1024 we need, so it signals us.
        let read = try #require(try reader.readPacket())
        #expect(read.signalWriter)
        #expect(try reader.readPacket()?.signalWriter == false)
        if case .written = try writer.writePacket(packet(1000, id: 99)) {} else { Issue.record("still full") }
        #expect(try memory.loadInteger(UInt32.self, at: Self.pages[0] + RingBuffer.Control.pendingSendSize) == 0)
    }

    @Test func indicesOutOfRangeFailTheRing() throws {
        let memory = makeMemory()
        for (field, value): (UInt64, UInt32) in [(0, 8192), (0, 12), (0, 0xFFFF_FFF8), (4, 9000)] {
            var (_, reader) = try pair(memory)
            try memory.storeInteger(UInt32(0), at: Self.pages[0])
            try memory.storeInteger(UInt32(0), at: Self.pages[0] + 4)
            try memory.storeInteger(value, at: Self.pages[0] + field)
            #expect(throws: RingBufferError.self) { try reader.readPacket() }
            #expect(reader.failure != nil)
            // Latched: fixing the index does not revive the ring.
            try memory.storeInteger(UInt32(0), at: Self.pages[0] + field)
            #expect(throws: RingBufferError.self) { try reader.readPacket() }
        }
        var (writer, _) = try pair(memory)
        try memory.storeInteger(UInt32(8200), at: Self.pages[0] + 4)
        #expect(throws: RingBufferError.self) { try writer.writePacket(packet(8, id: 1)) }
    }

    @Test func lyingPacketLengthsFailTheRing() throws {
        let memory = makeMemory()
        func corrupt(_ patch: (BufferGuestMemory, UInt64) throws -> Void) throws -> RingBufferError? {
            var (writer, reader) = try pair(memory)
            try memory.write([UInt8](repeating: 0, count: 16), at: Self.pages[0])
            _ = try writer.writePacket(packet(40, id: 1))
            try patch(memory, Self.pages[1])
            do {
                _ = try reader.readPacket()
                return nil
            } catch {
                return error
            }
        }
        // Length beyond what the writer published.
        #expect(try corrupt { m, d in try m.storeInteger(UInt16(200), at: d + 4) } != nil)
        // Length smaller than the descriptor.
        #expect(try corrupt { m, d in try m.storeInteger(UInt16(1), at: d + 4) } != nil)
        // Data offset beyond the length.
        #expect(try corrupt { m, d in try m.storeInteger(UInt16(100), at: d + 2) } != nil)
        // Write index claiming fewer bytes than a descriptor.
        #expect(try corrupt { m, _ in try m.storeInteger(UInt32(8), at: Self.pages[0]) } != nil)
        // Untouched: fine.
        #expect(try corrupt { _, _ in } == nil)
    }

    @Test func badLayouts() {
        let memory = makeMemory()
        #expect(throws: RingBufferError.self) { try RingBuffer(pageAddresses: [0x1000], memory: memory) }
        #expect(throws: RingBufferError.self) { try RingBuffer(pageAddresses: [0x1000, 0x2001], memory: memory) }
        var ring = try? RingBuffer(pageAddresses: [0x1000, 0x2000], memory: memory)
        #expect(throws: RingBufferError.packetTooLarge(size: 4096 + 8, dataSize: 4096)) {
            try ring?.writePacket(VMBusPacket(type: .dataInBand, transactionID: 0, payload: [UInt8](repeating: 0, count: 4080)))
        }
        // A page outside guest RAM (a GPADL would never allow this, but the ring must not trap).
        var outside = try? RingBuffer(pageAddresses: [0x1000, 0x8000_0000], memory: memory)
        #expect(throws: RingBufferError.self) { try outside?.writePacket(VMBusPacket(type: .dataInBand, transactionID: 0, payload: [1])) }
    }

    @Test func hostDrainingUnmasksAndRechecks() throws {
        let memory = makeMemory()
        var (writer, reader) = try pair(memory)
        try reader.setInterruptMask(true)
        #expect(try writer.writePacket(packet(8, id: 1)) == .written(signalReader: false))
        #expect(try reader.finishDraining())
        _ = try reader.readPacket()
        #expect(try reader.finishDraining() == false)
        #expect(try reader.interruptMask() == 0)
    }
}
