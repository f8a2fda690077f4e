import KeelNetwork
import KeelSystem
import KeelVMBus

/// Guest-physical layout of the benchmark's guest RAM (one 64 MiB region).
enum BenchLayout {
    static let ramSize: UInt64 = 64 << 20
    /// Data pages per ring direction: netvsc's default ring is 512 KiB each way.
    static let ringDataPages = 128
    static let guestToHostRing: UInt64 = 0x10_0000
    static let hostToGuestRing: UInt64 = 0x20_0000
    /// The receive buffer (16 MiB: 1024 sections of 16 KiB) and send buffer (1 MiB).
    static let receiveBuffer: UInt64 = 0x100_0000
    static let receiveBufferPages = 4096
    static let sendBuffer: UInt64 = 0x200_0000
    static let sendBufferPages = 256
    /// Where the guest builds its transmit packets and control messages.
    static let transmitArea: UInt64 = 0x300_0000
    static let controlArea: UInt64 = 0x380_0000
    static let receiveBufferHandle: UInt32 = 0xE1
    static let sendBufferHandle: UInt32 = 0xE2

    static func pages(_ base: UInt64, _ count: Int) -> [UInt64] { (0..<count).map { base + UInt64($0) * 4096 } }
}

/// Linux's hv_netvsc as far as the data path needs it, run on the benchmark's thread: it writes
/// NVSP packets into the guest→host ring, reads the host→guest ring and completes every
/// receive (transfer-page) packet, as the driver's NAPI poll does.
struct FakeNetvsc {
    private var toHost: RingBuffer
    private var fromHost: RingBuffer
    private let memory: GuestRAM
    private var nextID: UInt64 = 1
    private(set) var receivePackets = 0
    private(set) var receiveRanges = 0
    /// Bytes of received packets (each range's RNDIS data length).
    private(set) var receiveDataBytes = 0
    private(set) var completions = 0
    /// Send completions whose status is not success.
    private(set) var failures = 0
    /// Receive packets read whose completion did not fit the guest→host ring yet.
    private var unsentCompletions: [UInt64] = []

    init(memory: GuestRAM) throws(RingBufferError) {
        self.memory = memory
        toHost = try RingBuffer(pageAddresses: BenchLayout.pages(BenchLayout.guestToHostRing, 1 + BenchLayout.ringDataPages),
                                memory: memory)
        fromHost = try RingBuffer(pageAddresses: BenchLayout.pages(BenchLayout.hostToGuestRing, 1 + BenchLayout.ringDataPages),
                                  memory: memory)
    }

    mutating func transactionID() -> UInt64 {
        nextID += 1
        return nextID
    }

    /// Writes `packet` into the guest→host ring; false while the ring is full.
    mutating func post(_ packet: VMBusPacket) throws(RingBufferError) -> Bool {
        if case .written = try toHost.writePacket(packet) { return true }
        return false
    }

    /// Reads everything the host sent: completions are counted, receive packets completed (those
    /// that find the guest→host ring full wait for the next call).
    mutating func collect() throws(RingBufferError) {
        while let id = unsentCompletions.first {
            let completion = VMBusPacket(type: .completion, transactionID: id,
                                         payload: NetworkBench.nvsp([NVSPMessageType.sendRNDISPacketComplete, 1]))
            guard try post(completion) else { return }
            unsentCompletions.removeFirst()
        }
        while let result = try fromHost.readPacket() {
            let packet = result.packet
            switch packet.type {
            case .completion?:
                completions += 1
                let payload = packet.payload
                if NetworkBench.u32(payload, 0) == NVSPMessageType.sendRNDISPacketComplete,
                   NetworkBench.u32(payload, 4) != NVSPStatus.success { failures += 1 }
            case .dataUsingTransferPages?:
                receivePackets += 1
                let ranges = Int(NetworkBench.u32(packet.header, 4))
                receiveRanges += ranges
                for range in 0..<ranges {
                    let offset = UInt64(NetworkBench.u32(packet.header, 12 + 8 * range))
                    receiveDataBytes += Int((try? memory.load(UInt32.self, at: BenchLayout.receiveBuffer + offset + 12)) ?? 0)
                }
                unsentCompletions.append(packet.transactionID)
                try collect()
                return
            default:
                break
            }
        }
    }

    /// An RNDIS control message sent GPA-direct on the control channel, as netvsc does.
    mutating func controlPacket(_ message: [UInt8]) throws -> VMBusPacket {
        try memory.write(message, at: BenchLayout.controlArea)
        let range = GPADirectBuffer.Range(byteCount: message.count, byteOffset: 0, pfns: [BenchLayout.controlArea >> 12])
        return try GPADirectBuffer(ranges: [range]).packet(
            transactionID: transactionID(), payload: NetworkBench.nvsp([NVSPMessageType.sendRNDISPacket, 1, 0xFFFF_FFFF, 0]))
    }
}
