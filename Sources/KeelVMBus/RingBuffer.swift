import KeelSystem

/// One direction of a channel's ring over guest pages that need not be contiguous: a control
/// page followed by the data area (hyperv-platform.md §6). The host is the reader of the
/// guest→host ring and the writer of the host→guest ring; the same type serves both.
///
/// The host keeps its own index privately and never reads it back from guest memory; the
/// guest's index is validated on every use. A bad index or a lying packet length puts the
/// ring into a failed state (`failure`) and every later call throws that error.
public struct RingBuffer: Sendable {
    /// Control-page field offsets.
    public enum Control {
        public static let writeIndex: UInt64 = 0
        public static let readIndex: UInt64 = 4
        public static let interruptMask: UInt64 = 8
        public static let pendingSendSize: UInt64 = 12
        public static let featureBits: UInt64 = 64
        /// Feature bit 0: the pending-send-size protocol is supported.
        public static let featurePendingSendSize: UInt32 = 1
    }

    /// Result of reading one packet.
    public struct ReadResult: Sendable, Equatable {
        public let packet: VMBusPacket
        /// The writer waits for space (pending send size) and now has it: signal the guest.
        public let signalWriter: Bool
    }

    /// Result of writing one packet.
    public enum WriteResult: Sendable, Equatable {
        /// Written; `signalReader` says whether the guest must be interrupted.
        case written(signalReader: Bool)
        /// Not enough space. `required` bytes were put in pending send size: the guest signals
        /// (HvSignalEvent) once it has read enough.
        case full(required: Int)
    }

    private let pages: [UInt64]
    private let memory: any GuestMemory
    /// Size of the data area in bytes.
    public let dataSize: Int
    public private(set) var failure: RingBufferError?
    private var ownReadIndex: UInt32?
    private var ownWriteIndex: UInt32?
    private var requestedSpace = false

    /// - Parameter pageAddresses: page-aligned guest-physical addresses, control page first.
    public init(pageAddresses: [UInt64], memory: any GuestMemory) throws(RingBufferError) {
        guard pageAddresses.count >= 2 else { throw .badLayout("\(pageAddresses.count) pages, need at least 2") }
        guard pageAddresses.count - 1 <= Int(UInt32.max) / Int(VMBusPage.size) else {
            throw .badLayout("\(pageAddresses.count) pages is too large for 32-bit indices")
        }
        if let bad = pageAddresses.first(where: { $0 % VMBusPage.size != 0 }) {
            throw .badLayout("page address 0x\(String(bad, radix: 16)) is not page-aligned")
        }
        pages = pageAddresses
        self.memory = memory
        dataSize = (pageAddresses.count - 1) * Int(VMBusPage.size)
    }

    // MARK: - Control page

    private var controlPage: UInt64 { pages[0] }

    // The accessors below take `memory` and the address into locals before the call: calling
    // through `self` made the compiler copy the whole ring (pages, memory) on every access.

    private mutating func load(_ offset: UInt64) throws(RingBufferError) -> UInt32 {
        let (memory, address) = (self.memory, controlPage + offset)
        do {
            return try memory.loadUInt32(at: address)
        } catch {
            throw latch(.memory(error))
        }
    }

    private mutating func store(_ value: UInt32, _ offset: UInt64) throws(RingBufferError) {
        let (memory, address) = (self.memory, controlPage + offset)
        do {
            try memory.storeUInt32(value, at: address)
        } catch {
            throw latch(.memory(error))
        }
    }

    private mutating func latch(_ error: RingBufferError) -> RingBufferError {
        failure = error
        return error
    }

    private func checkHealthy() throws(RingBufferError) {
        if let failure { throw failure }
    }

    private mutating func loadIndex(_ offset: UInt64, _ name: String) throws(RingBufferError) -> UInt32 {
        let value = try load(offset)
        guard Int(value) < dataSize, value % 8 == 0 else {
            throw latch(.indexOutOfRange(field: name, value: value, dataSize: dataSize))
        }
        return value
    }

    /// The reader's interrupt mask (non-zero: "do not signal me").
    public mutating func interruptMask() throws(RingBufferError) -> UInt32 { try load(Control.interruptMask) }

    /// Sets this side's interrupt mask (the host as reader masks while draining).
    public mutating func setInterruptMask(_ masked: Bool) throws(RingBufferError) {
        try checkHealthy()
        try store(masked ? 1 : 0, Control.interruptMask)
    }

    /// The control page's feature bits.
    public mutating func featureBits() throws(RingBufferError) -> UInt32 { try load(Control.featureBits) }

    // MARK: - Data area

    /// Where data-area byte `offset` is in guest memory (`pages[0]` is the control page), and how
    /// many bytes are left in its page. Static so that callers pass only `pages`: a method call
    /// on `self` made the compiler copy the whole ring around it.
    private static func dataAddress(_ offset: Int, _ pages: [UInt64]) -> (address: UInt64, room: Int) {
        let page = 1 + offset / Int(VMBusPage.size)
        let within = offset % Int(VMBusPage.size)
        return (pages[page] + UInt64(within), Int(VMBusPage.size) - within)
    }

    private mutating func readData(at start: Int, count: Int) throws(RingBufferError) -> [UInt8] {
        let memory = self.memory
        var offset = start % dataSize
        var result: [UInt8] = []
        do {
            // Most packets lie within one page: one read, no second copy.
            let (address, room) = Self.dataAddress(offset, pages)
            if count <= room { return try memory.read(at: address, count: count) }
            result.reserveCapacity(count)
            while result.count < count {
                let (address, room) = Self.dataAddress(offset, pages)
                let chunk = min(room, count - result.count)
                result += try memory.read(at: address, count: chunk)
                offset = (offset + chunk) % dataSize
            }
        } catch {
            throw latch(.memory(error))
        }
        return result
    }

    /// A 32-bit field of the data area (8-byte aligned offsets never straddle a page or the wrap).
    private mutating func loadData(at offset: Int) throws(RingBufferError) -> UInt32 {
        let (memory, address) = (self.memory, Self.dataAddress(offset % dataSize, pages).address)
        do {
            return try memory.loadUInt32(at: address)
        } catch {
            throw latch(.memory(error))
        }
    }

    private mutating func storeData(_ value: UInt32, at offset: Int) throws(RingBufferError) {
        let (memory, address) = (self.memory, Self.dataAddress(offset % dataSize, pages).address)
        do {
            try memory.storeUInt32(value, at: address)
        } catch {
            throw latch(.memory(error))
        }
    }

    private mutating func writeData(_ bytes: ArraySlice<UInt8>, at start: Int) throws(RingBufferError) {
        let memory = self.memory
        var offset = start % dataSize
        var done = bytes.startIndex
        while done < bytes.endIndex {
            let (address, room) = Self.dataAddress(offset, pages)
            let chunk = min(room, bytes.endIndex - done)
            do {
                try memory.write(bytes[done..<done + chunk], at: address)
            } catch {
                throw latch(.memory(error))
            }
            done += chunk
            offset = (offset + chunk) % dataSize
        }
    }

    private func distance(from start: UInt32, to end: UInt32) -> Int {
        (Int(end) - Int(start) + dataSize) % dataSize
    }

    // MARK: - Reading (guest→host ring)

    private mutating func readIndexForReading() throws(RingBufferError) -> UInt32 {
        if let ownReadIndex { return ownReadIndex }
        let index = try loadIndex(Control.readIndex, "read index")
        ownReadIndex = index
        return index
    }

    /// Bytes the writer has published and the host has not consumed.
    public mutating func bytesAvailableToRead() throws(RingBufferError) -> Int {
        try checkHealthy()
        let read = try readIndexForReading()
        let write = try loadIndex(Control.writeIndex, "write index")
        return distance(from: read, to: write)
    }

    /// Reads and consumes one packet; nil if the ring is empty.
    public mutating func readPacket() throws(RingBufferError) -> ReadResult? {
        let available = try bytesAvailableToRead()
        guard available > 0 else { return nil }
        let read = try readIndexForReading()
        let minimum = VMBusPacket.descriptorSize + VMBusPacket.trailerSize
        guard available >= minimum else {
            throw latch(.corruptPacket("\(available) bytes published, less than a descriptor and trailer"))
        }
        // Descriptor: type, data offset / 8, length / 8, flags (16 bits each), transaction id.
        let typeAndOffset = try loadData(at: Int(read))
        let lengthAndFlags = try loadData(at: Int(read) + 4)
        let dataOffset = Int(typeAndOffset >> 16) * 8
        let length = Int(lengthAndFlags & 0xFFFF) * 8
        guard length >= VMBusPacket.descriptorSize, dataOffset >= VMBusPacket.descriptorSize, dataOffset <= length else {
            throw latch(.corruptPacket("length \(length), data offset \(dataOffset)"))
        }
        guard length + VMBusPacket.trailerSize <= available else {
            throw latch(.corruptPacket("length \(length) exceeds the \(available) bytes published"))
        }
        let bytes = try readData(at: Int(read), count: length)
        let consumed = length + VMBusPacket.trailerSize
        let newRead = UInt32((Int(read) + consumed) % dataSize)
        try store(newRead, Control.readIndex)
        ownReadIndex = newRead

        let freeBefore = dataSize - available
        let freeAfter = freeBefore + consumed
        let pending = Int(try load(Control.pendingSendSize) & ~7)
        let signal = pending != 0 && freeBefore <= pending && freeAfter > pending
        // From the copy: the ring space is the guest's again once the read index moved.
        let packet = VMBusPacket(rawType: UInt16(truncatingIfNeeded: typeAndOffset), flags: UInt16(lengthAndFlags >> 16),
                                 transactionID: ByteReader(bytes).u64(8), dataOffset: dataOffset, bytes: bytes)
        return ReadResult(packet: packet, signalWriter: signal)
    }

    /// Ends a drain: clears the interrupt mask, then re-checks. Returns true if data arrived in
    /// the meantime (keep reading; no signal from the guest is coming for it).
    public mutating func finishDraining() throws(RingBufferError) -> Bool {
        try setInterruptMask(false)
        return try bytesAvailableToRead() > 0
    }

    // MARK: - Writing (host→guest ring)

    private mutating func writeIndexForWriting() throws(RingBufferError) -> UInt32 {
        if let ownWriteIndex { return ownWriteIndex }
        let index = try loadIndex(Control.writeIndex, "write index")
        ownWriteIndex = index
        return index
    }

    /// Free bytes as the writer sees them (a write needs strictly more than its ring size).
    public mutating func bytesAvailableToWrite() throws(RingBufferError) -> Int {
        try checkHealthy()
        let write = try writeIndexForWriting()
        let read = try loadIndex(Control.readIndex, "read index")
        return dataSize - distance(from: read, to: write)
    }

    /// Writes one packet and its trailer, never filling the ring completely, and decides
    /// whether the guest must be interrupted (interrupt mask clear and the ring was empty).
    public mutating func writePacket(_ packet: VMBusPacket) throws(RingBufferError) -> WriteResult {
        try checkHealthy()
        let total = packet.ringSize
        guard total < dataSize else { throw .packetTooLarge(size: total, dataSize: dataSize) }
        let write = try writeIndexForWriting()
        if try bytesAvailableToWrite() <= total {
            // Ask for a signal, then look again: the guest may have read in between.
            try store(UInt32(total), Control.pendingSendSize)
            requestedSpace = true
            guard try bytesAvailableToWrite() > total else { return .full(required: total) }
        }
        try writeData(packet.bytes[...], at: Int(write))
        // Trailer: the previous write index in the high half.
        try storeData(0, at: Int(write) + packet.bytes.count)
        try storeData(write, at: Int(write) + packet.bytes.count + 4)
        if requestedSpace {
            try store(0, Control.pendingSendSize)
            requestedSpace = false
        }
        let newWrite = UInt32((Int(write) + total) % dataSize)
        try store(newWrite, Control.writeIndex)
        ownWriteIndex = newWrite
        guard try interruptMask() == 0 else { return .written(signalReader: false) }
        let readNow = try load(Control.readIndex)
        return .written(signalReader: readNow == write)
    }
}
