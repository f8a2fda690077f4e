import KeelStorage
import KeelSystem
import KeelVMBus
import Testing

/// The transaction id storvsc uses for initialization packets.
let initID: UInt64 = 0xFFFF_FFFF_FFFF_FFFD

/// A vstor packet of `size` bytes as storvsc sends it (flags REQUEST_COMPLETION).
func vstorBytes(_ op: UInt32, body: [UInt8] = [], size: Int = 64) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: max(size, 12))
    put(&bytes, 0, UInt64(op), 4)
    put(&bytes, 4, 1, 4)
    for (i, b) in body.enumerated() where 12 + i < bytes.count { bytes[12 + i] = b }
    return Array(bytes.prefix(size))
}

func inband(_ op: VStorOperation, body: [UInt8] = [], id: UInt64 = initID, flags: UInt16 = 1, size: Int = 64) -> VMBusPacket {
    VMBusPacket(type: .dataInBand, flags: flags, transactionID: id, payload: vstorBytes(op.rawValue, body: body, size: size))
}

func versionBody(_ version: UInt16) -> [UInt8] { [UInt8(version & 0xFF), UInt8(version >> 8), 0, 0] }

func put(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt64, _ size: Int) {
    for i in 0..<size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
}

func le32(_ bytes: [UInt8], _ offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) } }
func be32(_ bytes: [UInt8], _ offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[offset + $1]) } }
func be64(_ bytes: [UInt8], _ offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(bytes[offset + $1]) } }
func be16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
func beBytes(_ value: UInt64, _ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * (size - 1 - $0))) } }

/// The packet of a `.reply` action.
func replied(_ action: StorageAction) -> VMBusPacket? {
    if case .reply(let packet) = action { return packet }
    return nil
}

/// The vstor packet inside a completion.
func vstor(_ packet: VMBusPacket?) -> VStorPacket? { packet.flatMap { VStorPacket(decoding: $0.payload) } }

/// Runs storvsc's init sequence; returns the completions in order.
@discardableResult
func linuxHandshake(_ controller: inout StorageControllerProtocol,
                    versions: [UInt16] = [VStorVersion.threshold, VStorVersion.blue, VStorVersion.win8]) -> [VMBusPacket] {
    var replies: [VMBusPacket] = []
    replies += replied(controller.receive(inband(.beginInitialization))).map { [$0] } ?? []
    for version in versions {
        guard let reply = replied(controller.receive(inband(.queryProtocolVersion, body: versionBody(version)))) else { break }
        replies.append(reply)
        if vstor(reply)?.status == NTStatus.success { break }
    }
    replies += replied(controller.receive(inband(.queryProperties))).map { [$0] } ?? []
    replies += replied(controller.receive(inband(.endInitialization))).map { [$0] } ?? []
    return replies
}

func readyController(_ configuration: StorageControllerProtocol.Configuration = .init()) -> StorageControllerProtocol {
    var controller = StorageControllerProtocol(configuration: configuration)
    linuxHandshake(&controller)
    return controller
}

/// One contiguous guest buffer of `length` bytes at `address`, as a single GPA-direct range.
func contiguousBuffer(address: UInt64, length: Int) -> GPADirectBuffer? {
    guard length > 0 else { return nil }
    let offset = Int(address % 4096)
    let first = address / 4096
    let pages = (offset + length + 4095) / 4096
    return try? GPADirectBuffer(ranges: [.init(byteCount: length, byteOffset: offset, pfns: (0..<UInt64(pages)).map { first + $0 })],
                                maxPages: 4096)
}

/// An EXECUTE_SRB packet: GPA-direct when there is a buffer, in-band otherwise.
func srbPacket(_ srb: SCSIRequest, buffer: GPADirectBuffer?, id: UInt64 = 7, flags: UInt16 = 1) -> VMBusPacket {
    let payload = VStorPacket(operation: .executeSRB, flags: 1, body: srb.raw).encode()
    if let buffer { return buffer.packet(flags: flags, transactionID: id, payload: payload) }
    return VMBusPacket(type: .dataInBand, flags: flags, transactionID: id, payload: payload)
}

/// The SRB in a completion packet.
func responseSRB(_ packet: VMBusPacket?) -> SCSIRequest? { vstor(packet).map { SCSIRequest(decoding: $0.body) } }

let disk0 = SCSIAddress(lun: 0)
let mib: UInt64 = 1 << 20

/// A controller, its disks backed by byte arrays, and 4 MiB of guest RAM: runs SRBs end to end
/// the way a device adapter would (plan, I/O against the image and guest memory, complete).
struct StorageRig {
    var controller: StorageControllerProtocol
    var map: SCSITargetMap
    var images: [SCSIAddress: [UInt8]]
    let memory = BufferGuestMemory(base: 0, size: 4 << 20)

    init(disks: [SCSIAddress: VirtualDiskGeometry], configuration: StorageControllerProtocol.Configuration = .init()) {
        controller = readyController(configuration)
        map = SCSITargetMap(disks: disks, maxTransferBytes: Int(configuration.maxTransferBytes))
        images = disks.mapValues { [UInt8](repeating: 0, count: Int($0.sizeBytes)) }
    }

    /// Sends one SRB with a buffer of `length` bytes at `bufferAddress`; returns the response SRB
    /// and the first `data_transfer_length` bytes of the buffer afterwards.
    mutating func run(_ cdb: [UInt8], at address: SCSIAddress = disk0, direction: SCSIDataDirection = .read,
                      length: Int, bufferAddress: UInt64 = 0x10_0000 + 0x200) -> (srb: SCSIRequest, data: [UInt8]) {
        let srb = SCSIRequest(address: address, cdb: cdb, direction: length == 0 ? .none : direction,
                              dataTransferLength: UInt32(length))
        let packet = srbPacket(srb, buffer: contiguousBuffer(address: bufferAddress, length: length))
        guard case .execute(let request) = controller.receive(packet) else {
            Issue.record("SRB not executed")
            return (srb, [])
        }
        let completion = perform(request)
        let response = responseSRB(request.completionPacket(completion)) ?? srb
        let data = (try? memory.read(at: bufferAddress, count: Int(response.dataTransferLength))) ?? []
        return (response, data)
    }

    mutating func perform(_ request: StorageRequest) -> SCSICompletion {
        let plan = map.plan(request)
        switch plan {
        case .respond(let completion):
            copyIn(completion.dataIn, request)
            return completion
        case .read(let t):
            copyIn(Array(images[t.disk]?[Int(t.byteOffset)..<Int(t.byteOffset) + t.length] ?? []), request)
            return plan.complete(.success(bytesTransferred: t.length))
        case .write(let t):
            let data = copyOut(t.length, request)
            images[t.disk]?.replaceSubrange(Int(t.byteOffset)..<Int(t.byteOffset) + t.length, with: data)
            return plan.complete(.success(bytesTransferred: t.length))
        case .flush:
            return plan.complete(.success(bytesTransferred: 0))
        case .unmap(let disk, let length):
            switch map.unmapRanges(parameterList: copyOut(length, request), disk: disk) {
            case .respond(let completion):
                return completion
            case .discard(let ranges):
                for r in ranges {
                    images[disk]?.replaceSubrange(Int(r.byteOffset)..<Int(r.byteOffset + r.length),
                                                  with: repeatElement(0, count: Int(r.length)))
                }
                return plan.complete(.success(bytesTransferred: length))
            }
        }
    }

    private func copyIn(_ data: [UInt8], _ request: StorageRequest) {
        var offset = 0
        for segment in request.guestSegments(length: data.count) ?? [] {
            try? memory.write(Array(data[offset..<offset + segment.length]), at: segment.address)
            offset += segment.length
        }
    }

    private func copyOut(_ length: Int, _ request: StorageRequest) -> [UInt8] {
        (request.guestSegments(length: length) ?? []).flatMap { (try? memory.read(at: $0.address, count: $0.length)) ?? [] }
    }
}

/// Deterministic random numbers for the fuzz tests (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Expects CHECK CONDITION with autosense, fixed sense `key/asc`, and no data.
func expectSense(_ srb: SCSIRequest, key: UInt8, asc: UInt8, srbCode: UInt8 = SRBStatus.invalidRequest,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(srb.srbStatus == srbCode | SRBStatus.autosenseValid, sourceLocation: sourceLocation)
    #expect(srb.scsiStatus == SCSIStatus.checkCondition, sourceLocation: sourceLocation)
    #expect(srb.senseInfoLength == 18, sourceLocation: sourceLocation)
    #expect(srb.senseData.prefix(3) == [0x70, 0, key], sourceLocation: sourceLocation)
    #expect(srb.senseData.count > 13 && srb.senseData[7] == 10 && srb.senseData[12] == asc, sourceLocation: sourceLocation)
    #expect(srb.dataTransferLength == 0, sourceLocation: sourceLocation)
}
