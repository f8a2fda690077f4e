import KeelNetwork
import KeelSystem
@testable import KeelVMBus
import Testing

/// Guest memory as sparse 4 KiB pages.
struct GuestMemoryModel {
    var pages: [UInt64: [UInt8]] = [:]

    mutating func write(_ address: UInt64, _ bytes: [UInt8]) {
        for (i, byte) in bytes.enumerated() {
            let a = address + UInt64(i)
            pages[a & ~0xFFF, default: [UInt8](repeating: 0, count: 4096)][Int(a & 0xFFF)] = byte
        }
    }

    func read(_ address: UInt64, _ count: Int) -> [UInt8] {
        (0..<count).map { i in
            let a = address + UInt64(i)
            return pages[a & ~0xFFF]?[Int(a & 0xFFF)] ?? 0
        }
    }

    func read(_ segments: [GuestSegment]) -> [UInt8] { segments.flatMap { read($0.address, $0.length) } }
}

/// A guest through Linux's whole probe and `ip link set up` (see `GuestHarness.linuxProbe`).
func readyGuest(receivePageCount: Int = 64) -> GuestHarness {
    var guest = GuestHarness(receivePageCount: receivePageCount)
    guest.linuxProbe()
    return guest
}

/// The NVSP status of a completion.
func status(_ completion: VMBusPacket?) -> UInt32? { completion.map { le32($0.payload, 4) } }

/// NDIS_OFFLOAD_PARAMETERS as Linux's probe sets them for Keel's capabilities: IPv4 header
/// checksum off, TCP/UDP checksums on both ways, LSOv2 on, RSC on (its LRO is on by default).
let linuxOffloadParameters: [UInt8] = [0x80, 3, 28, 0, 1, 4, 4, 4, 4, 0, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]

/// Linux's netvsc as far as the tests need it: drives the adapter, performs its actions (maps the
/// GPADLs, reads RNDIS bytes, writes deliveries into guest memory), checks every transfer-page
/// packet the way netvsc_receive does and completes it (unless `autoComplete` is off).
struct GuestHarness {
    static let receiveBase: UInt64 = 0x10_0000
    static let sendBase: UInt64 = 0x40_0000
    static let scratch: UInt64 = 0x80_0000

    var adapter: NetworkAdapterProtocol
    var memory = GuestMemoryModel()
    var receivePages: [UInt64]?
    var sendPages: [UInt64]?
    var completions: [VMBusPacket] = []
    var frames: [[UInt8]] = []
    var transmitHeaders: [VirtioNetHeader] = []
    var diagnostics: [NetworkDiagnostic] = []
    var released: [NetworkAction] = []
    /// RNDIS messages the guest received, with the packet's channel type.
    var received: [(channelType: UInt32, message: [UInt8])] = []
    var pendingDeliveries: [UInt64] = []
    var autoComplete = true
    var nextID: UInt64 = 100

    init(_ configuration: NetworkAdapterProtocol.Configuration = .init(macAddress: testMAC),
         receivePageCount: Int = 64, sendPageCount: Int = 16) {
        adapter = NetworkAdapterProtocol(configuration: configuration)
        receivePages = (0..<receivePageCount).map { Self.receiveBase + UInt64($0) * 4096 }
        sendPages = (0..<sendPageCount).map { Self.sendBase + UInt64($0) * 4096 }
    }

    var receiveBufferSize: Int { (receivePages?.count ?? 0) * 4096 }

    mutating func run(_ actions: [NetworkAction]) {
        var queue = actions
        while !queue.isEmpty {
            switch queue.removeFirst() {
            case .send(let packet): completions.append(packet)
            case .mapReceiveBuffer: queue.insert(contentsOf: adapter.attachReceiveBuffer(pages: receivePages), at: 0)
            case .mapSendBuffer: queue.insert(contentsOf: adapter.attachSendBuffer(pages: sendPages), at: 0)
            case .readRNDIS(let transfer):
                queue.insert(contentsOf: adapter.rndisMessage(memory.read(transfer.segments), for: transfer), at: 0)
            case .transmit(let transmit): frames.append(transmit.frame); transmitHeaders.append(transmit.header)
            case .deliver(let delivery): accept(delivery)
            case .diagnostic(let diagnostic): diagnostics.append(diagnostic)
            case let other: released.append(other)
            }
        }
    }

    /// Writes a delivery into guest memory and reads it back as Linux's netvsc_receive does.
    mutating func accept(_ delivery: Delivery) {
        for write in delivery.guestWrites() { memory.write(write.address, Array(write.bytes)) }
        let packet = delivery.packet
        #expect(packet.rawType == VMBusPacketType.dataUsingTransferPages.rawValue)
        #expect(packet.completionRequested)
        let header = packet.header
        let count = Int(le32(header, 4))
        #expect(le16(header, 0) == 0xCAFE)
        #expect(packet.dataOffset >= 24 + 8 * count)
        let payload = packet.payload
        #expect(le32(payload, 0) == 107)
        for i in 0..<count {
            let length = Int(le32(header, 8 + 8 * i)), offset = Int(le32(header, 12 + 8 * i))
            #expect(offset <= receiveBufferSize && length <= receiveBufferSize - offset)
            // netvsc_receive drops a range longer than a section ("Packet too big").
            #expect(length <= adapter.receiveBufferLayout?.sectionSize ?? 0)
            let message = memory.read(Self.receiveBase + UInt64(offset), length)
            #expect(Int(le32(message, 4)) <= length && le32(message, 4) >= 8)
            received.append((le32(payload, 4), message))
        }
        if autoComplete {
            complete(delivery.transactionID)
        } else {
            pendingDeliveries.append(delivery.transactionID)
        }
    }

    mutating func complete(_ transactionID: UInt64, status: UInt32 = 1) {
        run(adapter.receive(VMBusPacket(type: .completion, transactionID: transactionID, payload: nvsp([108, status]))))
    }

    mutating func completePending() {
        let pending = pendingDeliveries
        pendingDeliveries = []
        for id in pending { complete(id) }
    }

    /// Sends a packet; returns the completion for it, if any.
    @discardableResult
    mutating func send(_ packet: VMBusPacket) -> VMBusPacket? {
        let before = completions.count
        run(adapter.receive(packet))
        return completions[before...].last { $0.transactionID == packet.transactionID }
    }

    @discardableResult
    mutating func nvspRequest(_ values: [UInt32], flags: UInt16 = 1) -> VMBusPacket? {
        nextID += 1
        return send(inband(values, id: nextID, flags: flags))
    }

    /// An RNDIS control request as Linux sends it (one GPA-direct page buffer, channel type 1);
    /// returns the response the guest received.
    @discardableResult
    mutating func control(_ message: [UInt8]) -> [UInt8]? {
        let before = received.count
        let completion = sendGPA(message, channelType: 1)
        #expect(completion.map { le32($0.payload, 4) } == NVSPStatus.success)
        return received.count > before ? received.last?.message : nil
    }

    /// `bytes` in guest pages at `pageOffset` of the scratch area, sent GPA-direct; returns the completion.
    @discardableResult
    mutating func sendGPA(_ bytes: [UInt8], channelType: UInt32 = 0, pageOffset: Int = 0x80,
                          section: (index: UInt32, size: UInt32)? = nil) -> VMBusPacket? {
        memory.write(Self.scratch + UInt64(pageOffset), bytes)
        let pages = (pageOffset + bytes.count + 4095) / 4096
        let range = GPADirectBuffer.Range(byteCount: bytes.count, byteOffset: pageOffset,
                                          pfns: (0..<pages).map { (Self.scratch >> 12) + UInt64($0) })
        // swiftlint:disable:next force_try
        let buffer = try! GPADirectBuffer(ranges: [range])
        nextID += 1
        let nvspBody: [UInt32] = [107, channelType, section?.index ?? 0xFFFF_FFFF, section?.size ?? 0]
        return send(buffer.packet(transactionID: nextID, payload: nvsp(nvspBody)))
    }

    /// `bytes` written into send-buffer section `index` (6144-byte sections) and sent in-band.
    @discardableResult
    mutating func sendSection(_ index: Int, _ bytes: [UInt8], channelType: UInt32 = 0) -> VMBusPacket? {
        memory.write(Self.sendBase + UInt64(index * 6144), bytes)
        return nvspRequest([107, channelType, UInt32(index), UInt32(bytes.count)])
    }

    /// NVSP INIT (6.1), NDIS config and version, receive and send buffers, as Linux probes.
    mutating func nvspInit(version: UInt32 = NVSPVersion.v61) {
        nvspRequest([1, version, version])
        nvspRequest([125, 1514, 0, 0x8], flags: 0)
        nvspRequest([100, 6, 30], flags: 0)
        nextID += 1
        send(bufferRequest(101, gpadl: 0xE1, id: 0xCAFE, transactionID: nextID))
        nextID += 1
        send(bufferRequest(104, gpadl: 0xE2, id: 0, transactionID: nextID))
    }

    /// The whole Linux probe plus `ip link set up`: RNDIS INIT, the queries and sets of
    /// rndis_filter_device_add, then the packet filter 0x0D.
    mutating func linuxProbe() {
        nvspInit()
        control(RNDISRequest.initialize(1))
        control(RNDISRequest.query(2, RNDISOID.maximumFrameSize))
        control(RNDISRequest.query(3, RNDISOID.permanentAddress))
        control(RNDISRequest.query(4, RNDISOID.friendlyName))
        control(RNDISRequest.query(5, RNDISOID.offloadHardwareCapabilities, input: [0xA7, 3, 156, 0] + [UInt8](repeating: 0, count: 152)))
        control(RNDISRequest.set(6, RNDISOID.offloadParameters, linuxOffloadParameters))
        control(RNDISRequest.query(7, RNDISOID.mediaConnectStatus))
        control(RNDISRequest.query(8, RNDISOID.linkSpeed))
        control(RNDISRequest.query(9, RNDISOID.receiveScaleCapabilities))
        control(RNDISRequest.set(10, RNDISOID.currentPacketFilter, u32Bytes([0x0D])))
    }
}
