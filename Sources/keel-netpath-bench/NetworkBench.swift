import KeelDevices
import KeelNetwork
import KeelSystem
import KeelVMBus
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The host side as the VMBus I/O loop runs it for one channel (`VMBusChannelLoop`), minus
/// the poll and the yield: drain with the mask held, unmask and re-check, then `tick`.
struct HostSide {
    var channel: VMBusChannel
    var device: NetworkAdapterDevice
    /// Time spent here, the figure the benchmark is about.
    private(set) var nanoseconds: UInt64 = 0

    mutating func service() {
        let start = HostClock.monotonicNanoseconds()
        drain()
        while channel.failure == nil, channel.unmask() { drain() }
        device.tick(&channel)
        nanoseconds += HostClock.monotonicNanoseconds() - start
    }

    private mutating func drain() {
        var batch: [VMBusPacket]
        repeat {
            batch = channel.receiveMasked(limit: 64)
            for packet in batch { device.packetReceived(packet, on: &channel) }
        } while batch.count == 64 && channel.failure == nil
    }
}

/// The NetVSP data path without a VM: the real `NetworkAdapterDevice` and `VMBusChannel` over
/// real guest RAM, a `FakeNetvsc` guest on one side and a socket pair standing in for the TAP on
/// the other, all on one thread. It measures the host's own work per packet (what the I/O
/// thread's user space costs), and runs unchanged under `valgrind --tool=callgrind` to count
/// instructions and calls; the rig cannot resolve changes of a few per cent.
@main
struct NetworkBench {
    static let mac: [UInt8] = [0x00, 0x15, 0x5D, 0x4B, 0x00, 0x01]
    /// Linux's NDIS_OFFLOAD_PARAMETERS for Keel's capabilities: checksums, LSOv2 and RSC on.
    static let offloadParameters: [UInt8] = [0x80, 3, 28, 0, 1, 4, 4, 4, 4, 0, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]

    static func main() {
        do {
            try run()
        } catch {
            print("keel-netpath-bench: \(error)")
            exit(1)
        }
    }

    static func run() throws {
        var packets = 20_000
        var mode = "both"
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            switch argument {
            case "--packets": packets = Int(arguments.popFirst() ?? "") ?? 0
            case "tx", "rx", "both": mode = argument
            default:
                throw BenchError("usage: keel-netpath-bench [tx|rx|both] [--packets N]")
            }
        }
        guard packets > 0 else { throw BenchError("--packets must be a positive number") }
        if mode != "rx" {
            var bench = try NetworkBench()
            report("tx", try bench.transmit(packets))
        }
        if mode != "tx" {
            var bench = try NetworkBench()
            report("rx", try bench.receive(packets))
        }
    }

    struct Result {
        var packets = 0
        var bytes = 0
        var hostNanoseconds: UInt64 = 0
        var signals = 0
        var hostRecords = 0
        var transferPackets = 0
    }

    static func report(_ label: String, _ r: Result) {
        let perPacket = Double(r.hostNanoseconds) / Double(max(r.packets, 1))
        let perMB = Double(r.hostNanoseconds) / (Double(r.bytes) / 1_048_576) / 1000
        print("netpath \(label): \(r.packets) packets, \(r.bytes / r.packets) B each; host \(Int(perPacket)) ns/packet, "
              + "\(Int(perMB)) µs/MB; \(r.signals) guest signals, \(r.hostRecords) frames on the host side"
              + (r.transferPackets > 0 ? ", \(r.transferPackets) transfer-page packets" : ""))
    }

    let memory: GuestRAM
    let signals = SignalCounter()
    var guest: FakeNetvsc
    var host: HostSide
    let peer: TapDevice

    init() throws {
        memory = try GuestRAM(ranges: [(guestAddress: 0, size: BenchLayout.ramSize)])
        let (tap, peer) = try TapDevice.pair(name: "netpath")
        self.peer = peer
        let open = VMBusChannelOpen(
            relid: 1, openID: 1, classID: VMBusDeviceClass.network, instanceID: .zero,
            signalConnectionID: VMBusServer.signalConnectionID(relid: 1), targetVP: 0, ringGPADL: 0xE0,
            guestToHostRing: BenchLayout.pages(BenchLayout.guestToHostRing, 1 + BenchLayout.ringDataPages),
            hostToGuestRing: BenchLayout.pages(BenchLayout.hostToGuestRing, 1 + BenchLayout.ringDataPages), userData: [])
        let counter = signals
        let channel = try VMBusChannel(open: open, memory: memory, signalGuest: { _, _ in counter.count.add(1, ordering: .relaxed) },
                                       gpadlPages: { handle in
            switch handle {
            case BenchLayout.receiveBufferHandle: BenchLayout.pages(BenchLayout.receiveBuffer, BenchLayout.receiveBufferPages)
            case BenchLayout.sendBufferHandle: BenchLayout.pages(BenchLayout.sendBuffer, BenchLayout.sendBufferPages)
            default: nil
            }
        })
        var device = NetworkAdapterDevice(index: 0, tap: tap, mac: Self.mac, memory: memory, log: { _ in })
        var opened = channel
        device.channelOpened(&opened)
        host = HostSide(channel: opened, device: device)
        guest = try FakeNetvsc(memory: memory)
        try probe()
    }

    /// NVSP and RNDIS bring-up as Linux's probe and `ip link set up` do it.
    private mutating func probe() throws {
        let requests: [(values: [UInt32], flags: UInt16)] = [
            ([NVSPMessageType.initialize, NVSPVersion.v61, NVSPVersion.v61], 1),
            ([125, 1514, 0, 0x8], 0),
            ([NVSPMessageType.sendNDISVersion, 6, 30], 0),
            ([NVSPMessageType.sendReceiveBuffer, BenchLayout.receiveBufferHandle, 0xCAFE], 1),
            ([NVSPMessageType.sendSendBuffer, BenchLayout.sendBufferHandle, 0], 1),
        ]
        for request in requests {
            try exchange(VMBusPacket(type: .dataInBand, flags: request.flags, transactionID: guest.transactionID(),
                                     payload: Self.nvsp(request.values)))
        }
        let controls: [[UInt8]] = [
            Self.u32Bytes([RNDISMessageType.initialize, 24, 1, 1, 0, 0x4000]),
            Self.rndisSet(2, RNDISOID.offloadParameters, Self.offloadParameters),
            Self.rndisSet(3, RNDISOID.currentPacketFilter, Self.u32Bytes([0x0D])),
        ]
        for control in controls { try exchange(guest.controlPacket(control)) }
        guard guest.failures == 0, guest.completions == requests.count - 2 + controls.count else {
            throw BenchError("probe failed: \(guest.completions) completions, \(guest.failures) failures")
        }
    }

    private mutating func exchange(_ packet: VMBusPacket) throws {
        guard try guest.post(packet) else { throw BenchError("guest→host ring full during the probe") }
        host.service()
        try guest.collect()
        host.service()
        try guest.collect()
    }

    // MARK: - Workloads

    /// Guest→host: large sends as netvsc makes them for a TCP stream (LSOv2, one GPA-direct
    /// range per page: the RNDIS header, the linear headers, then the payload pages), each
    /// answered by an ACK frame from the TAP that the guest receives.
    mutating func transmit(_ count: Int) throws -> Result {
        let payload = 45 * 1448
        var frame = Self.tcpFrame(payload: payload)
        frame[16] = 0   // LSOv2: netvsc leaves the IP total length zero
        frame[17] = 0
        let lso = Self.u32Bytes([16, 2, 12, 1448 | 34 << 20 | 1 << 30])
        let rndis = Self.u32Bytes([RNDISMessageType.packet, UInt32(44 + lso.count + frame.count), UInt32(36 + lso.count),
                                   UInt32(frame.count), 0, 0, 0, 36, UInt32(lso.count), 0, 0]) + lso
        let headerLength = 54
        let head = BenchLayout.transmitArea
        try memory.write(rndis, at: head + 0x40)
        try memory.write(Array(frame[..<headerLength]), at: head + 0x400)
        var ranges = [GPADirectBuffer.Range(byteCount: rndis.count, byteOffset: 0x40, pfns: [head >> 12]),
                      GPADirectBuffer.Range(byteCount: headerLength, byteOffset: 0x400, pfns: [head >> 12])]
        var offset = headerLength
        var page = (head >> 12) + 16
        while offset < frame.count {
            let chunk = min(4096, frame.count - offset)
            try memory.write(Array(frame[offset..<offset + chunk]), at: page << 12)
            ranges.append(GPADirectBuffer.Range(byteCount: chunk, byteOffset: 0, pfns: [page]))
            offset += chunk
            page += 1
        }
        let packet = try GPADirectBuffer(ranges: ranges).packet(
            transactionID: 1, payload: Self.nvsp([NVSPMessageType.sendRNDISPacket, 0, 0xFFFF_FFFF, 0]))
        // The host's TCP answers each large segment with an ACK, its checksum left to the device.
        let ack = Self.tcpFrame(payload: 0)
        let ackHeader = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 34, checksumOffset: 16)
        var result = Result()
        let completionsBefore = guest.completions
        let receivedBefore = guest.receiveRanges
        var sent = 0
        var acks = 0
        var idle = 0
        var lastReceived = receivedBefore
        while sent < count || guest.receiveRanges - receivedBefore < acks {
            // Up to 32 sends per round, as a TCP window of about 2 MB allows (and the socket holds).
            let round = min(count, sent + 32)
            while sent < round, try guest.post(packet) { sent += 1 }
            host.service()
            try guest.collect()
            let frames = drainPeer()
            result.hostRecords += frames
            for _ in 0..<frames where peer.write(header: ackHeader, head: ack, guestRanges: [], in: memory) { acks += 1 }
            let received = guest.receiveRanges
            idle = frames == 0 && sent == count && received == lastReceived ? idle + 1 : 0
            lastReceived = received
            if idle > 1000 {
                throw BenchError("transmit stalled: \(guest.receiveRanges - receivedBefore) of \(acks) ACKs received")
            }
        }
        guard guest.completions - completionsBefore == count, guest.failures == 0, result.hostRecords == count,
              acks == count else {
            throw BenchError("transmit: \(guest.completions - completionsBefore) completions, \(guest.failures) failures, "
                             + "\(result.hostRecords) frames out of \(count), \(acks) ACKs")
        }
        result.packets = count
        result.bytes = count * frame.count
        result.hostNanoseconds = host.nanoseconds
        result.signals = signals.count.load(ordering: .relaxed)
        return result
    }

    /// Host→guest: unsegmented TCP packets from the TAP (virtio-net GSO header, 45 segments with
    /// timestamps, as Linux sends them), which reach the guest as several packets each; each
    /// frame's worth of payload is answered by a small ACK frame sent through the send buffer,
    /// as a guest receiving a stream does.
    mutating func receive(_ count: Int) throws -> Result {
        let payload = 45 * 1448
        let frame = Self.tcpFrame(payload: payload, timestamps: true)
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoTCPv4,
                                     headerLength: 66, segmentSize: 1448, checksumStart: 34, checksumOffset: 16)
        let ack = Self.tcpFrame(payload: 0)
        let ackMessage = Self.u32Bytes([RNDISMessageType.packet, UInt32(44 + ack.count), 36, UInt32(ack.count),
                                        0, 0, 0, 0, 0, 0, 0]) + ack
        try memory.write(ackMessage, at: BenchLayout.sendBuffer)
        var result = Result()
        let (rangesBefore, bytesBefore) = (guest.receiveRanges, guest.receiveDataBytes)
        // Every packet the guest gets carries the frame's 66 bytes of headers.
        func framesReceived(_ guest: FakeNetvsc) -> Int {
            (guest.receiveDataBytes - bytesBefore - 66 * (guest.receiveRanges - rangesBefore)) / payload
        }
        var injected = 0
        var acked = 0
        var idle = 0
        while framesReceived(guest) < count {
            // Keep up to 32 frames waiting on the TAP, as a sender with a full window does.
            while injected < count, injected - framesReceived(guest) < 32,
                  peer.write(header: header, head: frame, guestRanges: [], in: memory) { injected += 1 }
            host.service()
            try guest.collect()
            while acked < framesReceived(guest) {
                let send = VMBusPacket(type: .dataInBand, flags: 1, transactionID: guest.transactionID(),
                                       payload: Self.nvsp([NVSPMessageType.sendRNDISPacket, 0, 0, UInt32(ackMessage.count)]))
                guard try guest.post(send) else { break }
                acked += 1
            }
            result.hostRecords += drainPeer()
            idle = framesReceived(guest) == result.packets ? idle + 1 : 0
            result.packets = framesReceived(guest)
            if idle > 1000 {
                throw BenchError("receive stalled after \(result.packets) packets, \(injected) sent, "
                                 + "\(host.device.droppedFrames) dropped")
            }
        }
        host.service()
        try guest.collect()
        result.hostRecords += drainPeer()
        guard guest.failures == 0, result.hostRecords == acked else {
            throw BenchError("receive: \(guest.failures) failures, \(result.hostRecords) ACK frames out of \(acked)")
        }
        result.packets = count
        result.bytes = count * frame.count
        result.hostNanoseconds = host.nanoseconds
        result.signals = signals.count.load(ordering: .relaxed)
        result.transferPackets = guest.receivePackets
        return result
    }

    /// Reads and discards what the adapter wrote to the TAP; returns how many frames.
    private func drainPeer() -> Int {
        var frames = 0
        while peer.read() != nil { frames += 1 }
        return frames
    }

    // MARK: - Wire formats

    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        guard bytes.count >= offset + 4 else { return 0 }
        return (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    static func u32Bytes(_ values: [UInt32]) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    }

    /// An NVSP message: the 40-byte union netvsc sends.
    static func nvsp(_ values: [UInt32]) -> [UInt8] { Array((u32Bytes(values) + [UInt8](repeating: 0, count: 40)).prefix(40)) }

    static func rndisSet(_ id: UInt32, _ oid: UInt32, _ data: [UInt8]) -> [UInt8] {
        u32Bytes([RNDISMessageType.set, UInt32(28 + data.count), id, oid, UInt32(data.count), 20, 0]) + data
    }

    /// An Ethernet + IPv4 + TCP frame to the adapter's MAC with `payload` bytes.
    /// An Ethernet + IPv4 + TCP frame to the adapter, with the timestamps option if asked.
    static func tcpFrame(payload: Int, timestamps: Bool = false) -> [UInt8] {
        let options: [UInt8] = timestamps ? [1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7] : []
        let ipLength = 40 + options.count + payload
        var frame = mac + [0x02, 0, 0, 0, 0, 0x99, 0x08, 0x00]
        frame += [0x45, 0, UInt8(ipLength >> 8), UInt8(ipLength & 0xFF), 0x12, 0x34, 0x40, 0, 64, 6, 0, 0,
                  10, 79, 0, 2, 10, 79, 0, 1]
        frame += [0x9C, 0x40, 0x13, 0x89, 0, 0, 0, 1, 0, 0, 0, 0, UInt8(20 + options.count) << 2, 0x10, 0xFF, 0xFF, 0, 0, 0, 0]
        return frame + options + (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    }
}

/// Guest interrupts the channel raised.
final class SignalCounter: Sendable {
    let count = Atomic<Int>(0)
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
