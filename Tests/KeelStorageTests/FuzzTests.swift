import KeelStorage
@testable import KeelVMBus
import Testing

/// Random packets and CDBs: nothing traps, every request that asks for a completion gets exactly
/// one, and every planned transfer stays inside the disk and the guest buffer.
@Suite struct FuzzTests {
    static let disks: [SCSIAddress: VirtualDiskGeometry] = [
        disk0: VirtualDiskGeometry(sizeBytes: mib, supportsUnmap: true),
        SCSIAddress(lun: 1): VirtualDiskGeometry(sizeBytes: 3 * mib + 17, readOnly: true),
        SCSIAddress(path: 1, target: 1, lun: 5): VirtualDiskGeometry(sizeBytes: 3 << 40, logicalBlockSize: 4096),
    ]
    static let opcodes: [UInt8] = [0x00, 0x03, 0x08, 0x0A, 0x12, 0x1A, 0x1B, 0x1E, 0x25, 0x28, 0x2A, 0x2F, 0x35, 0x42,
                                   0x5A, 0x88, 0x8A, 0x8F, 0x91, 0x9E, 0xA0, 0xA8, 0xAA, 0x85, 0xA1, 0x93]
    let map = SCSITargetMap(disks: disks, maxUnmapBlockDescriptors: 8)

    func randomBytes(_ count: Int, _ rng: inout SeededGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    func randomSRB(_ rng: inout SeededGenerator) -> [UInt8] {
        var cdb = randomBytes(16, &rng)
        cdb[0] = Self.opcodes.randomElement(using: &rng) ?? 0
        if Bool.random(using: &rng) {
            // Small LBAs and lengths, so that some transfers land on the disk.
            cdb.replaceSubrange(1...13, with: repeatElement(0, count: 13))
            for i in [4, 8, 9, 13] { cdb[i] = UInt8.random(in: 0...8, using: &rng) }
        }
        let address = Bool.random(using: &rng) ? disk0 : SCSIAddress(path: UInt8.random(in: 0...1, using: &rng), target: UInt8.random(in: 0...1, using: &rng),
                                  lun: UInt8.random(in: 0...5, using: &rng))
        var raw = SCSIRequest(address: address, cdb: cdb, direction: .read,
                              dataTransferLength: UInt32.random(in: 0...70_000, using: &rng)).raw
        raw[8] = [6, 10, 12, 16, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng) ?? 16
        if Int.random(in: 0..<8, using: &rng) == 0 { raw[12...15] = [0xFF, 0xFF, 0xFF, 0xFF] }
        return raw
    }

    func randomPacket(_ rng: inout SeededGenerator, id: UInt64) -> VMBusPacket {
        let flags: UInt16 = Int.random(in: 0..<10, using: &rng) == 0 ? 0 : 1
        var payload: [UInt8]
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: payload = randomBytes(Int.random(in: 0...80, using: &rng), &rng)
        case 1: payload = vstorBytes(UInt32.random(in: 0...16, using: &rng), body: randomBytes(52, &rng))
        default: payload = vstorBytes(3, body: randomSRB(&rng), size: Bool.random(using: &rng) ? 64 : 48)
        }
        switch Int.random(in: 0..<12, using: &rng) {
        case 0:
            return VMBusPacket(rawType: UInt16.random(in: 0...20, using: &rng), flags: flags, transactionID: id,
                               dataOffset: 16, bytes: [UInt8](repeating: 0, count: 16) + payload)
        case 1:
            return VMBusPacket(type: .dataUsingGPADirect, flags: flags, transactionID: id,
                               header: randomBytes(Int.random(in: 0...64, using: &rng), &rng), payload: payload)
        case 2...6:
            let length = Int.random(in: 1...300_000, using: &rng)
            let address = UInt64.random(in: 0...(1 << 30), using: &rng)
            guard let buffer = contiguousBuffer(address: address, length: length) else { fallthrough }
            return buffer.packet(flags: flags, transactionID: id, payload: payload)
        default:
            return VMBusPacket(type: .dataInBand, flags: flags, transactionID: id, payload: payload)
        }
    }

    /// Plays the device adapter for one request; returns the completion it would send.
    func execute(_ request: StorageRequest, _ rng: inout SeededGenerator) -> SCSICompletion {
        let plan = map.plan(request)
        switch plan {
        case .respond(let completion):
            #expect(completion.dataIn.count <= request.bufferLength)
            #expect(request.guestSegments(length: completion.dataIn.count) != nil)
            return completion
        case .read(let t), .write(let t):
            let disk = Self.disks[t.disk]
            #expect(t.length > 0 && t.length <= request.bufferLength)
            #expect(t.byteOffset + UInt64(t.length) <= disk?.sizeBytes ?? 0)
            #expect(request.guestSegments(length: t.length)?.reduce(0) { $0 + $1.length } == t.length)
            if case .write = plan { #expect(disk?.readOnly == false) }
            let results: [SCSIIOResult] = [.success(bytesTransferred: t.length), .ioError(code: 5), .noSpace,
                                           .success(bytesTransferred: Int.random(in: 0...t.length, using: &rng))]
            return plan.complete(results.randomElement(using: &rng) ?? .noSpace)
        case .flush:
            return plan.complete(.success(bytesTransferred: 0))
        case .unmap(let address, let length):
            #expect(length <= request.bufferLength)
            switch map.unmapRanges(parameterList: randomBytes(length, &rng), disk: address) {
            case .respond(let completion):
                return completion
            case .discard(let ranges):
                #expect(ranges.allSatisfy { $0.byteOffset + $0.length <= Self.disks[address]?.sizeBytes ?? 0 })
                return plan.complete(.success(bytesTransferred: 0))
            }
        }
    }

    @Test(arguments: [1, 2, 3, 4]) func randomPacketsGetExactlyOneReply(seed: UInt64) {
        var rng = SeededGenerator(state: seed)
        var controller = StorageControllerProtocol(configuration: .init(maxSubchannels: 2))
        var executed = 0
        for iteration in 0..<1500 {
            if iteration % 500 == 0 {
                controller.reset()
                if seed != 4 { linuxHandshake(&controller) }
            }
            let id = UInt64(iteration) &+ 1
            let packet = randomPacket(&rng, id: id)
            let negotiated = controller.negotiatedVersion != nil
            let onSubchannel = iteration % 5 == 0
            let action = onSubchannel ? controller.receiveOnSubchannel(packet) : controller.receive(packet)
            var replies: [VMBusPacket] = []
            switch action {
            case .none: break
            case .reply(let reply), .completeAfterOutstandingIO(let reply): replies.append(reply)
            case .offerSubchannels(_, let count, let completion):
                #expect(count >= 0 && count <= 2 && controller.subchannelsOffered <= 2)
                replies += completion.map { [$0] } ?? []
            case .execute(let request):
                executed += 1
                replies += request.completionPacket(execute(request, &rng)).map { [$0] } ?? []
            }
            #expect(replies.count == (packet.completionRequested ? 1 : 0), "packet \(iteration): \(action)")
            for reply in replies {
                #expect(reply.type == .completion && reply.transactionID == id)
                // Sized like the request (48...64) until a Win8+ version is agreed, then always 64.
                #expect(negotiated ? reply.payload.count == 64 : (48...64).contains(reply.payload.count))
                #expect(vstor(reply)?.operation == VStorOperation.completeIO.rawValue)
                #expect((responseSRB(reply)?.senseInfoLength ?? 0) <= 20)
            }
        }
        #expect(seed == 4 || executed > 600)
    }

    @Test func randomCDBsAgainstTheTargetMap() {
        var rng = SeededGenerator(state: 99)
        var kinds: Set<String> = []
        for _ in 0..<5000 {
            let srb = SCSIRequest(decoding: randomSRB(&rng))
            let buffer = [Int.random(in: -10...300_000, using: &rng), 0, Int.max, Int.min].randomElement(using: &rng) ?? 0
            let plan = map.plan(srb, bufferLength: buffer)
            let limit = max(0, min(buffer, Int(srb.dataTransferLength)))
            kinds.insert(String(describing: plan).prefix { $0 != "(" }.description)
            switch plan {
            case .respond(let c): #expect(c.dataIn.count <= limit && Int(c.dataTransferLength) == c.dataIn.count)
            case .read(let t), .write(let t): #expect(t.length <= limit)
            case .unmap(_, let length): #expect(length <= limit)
            case .flush: break
            }
            _ = map.unmapRanges(parameterList: randomBytes(Int.random(in: 0...200, using: &rng), &rng), disk: disk0)
        }
        #expect(kinds == ["respond", "read", "write", "flush", "unmap"])
    }
}
