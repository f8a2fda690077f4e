import KeelStorage
@testable import KeelVMBus
import Testing

/// Guest input is hostile: every malformed packet gets an error answer, never a trap.
@Suite struct HostilePacketTests {
    @Test func truncatedVStorPackets() {
        var controller = StorageControllerProtocol()
        for size in [0, 4, 12, 20, 40] {  // (payloads are padded to 8 bytes: 47 would read as 48)
            let packet = VMBusPacket(type: .dataInBand, flags: 1, transactionID: UInt64(size), payload: vstorBytes(7, size: size))
            let reply = replied(controller.receive(packet))
            #expect(reply?.transactionID == UInt64(size))
            #expect(reply?.payload.count == 48)
            #expect(vstor(reply)?.operation == VStorOperation.completeIO.rawValue)
            #expect(vstor(reply)?.status == NTStatus.invalidParameter)
        }
        #expect(controller.phase == .awaitingBegin)
        var ready = readyController()
        let short = VMBusPacket(type: .dataInBand, flags: 1, transactionID: 3, payload: vstorBytes(3, size: 20))
        #expect(replied(ready.receive(short))?.payload.count == 64)
        #expect(ready.receive(VMBusPacket(type: .dataInBand, flags: 0, transactionID: 3, payload: [])) == .none)
    }

    @Test func otherPacketTypesAndBrokenDescriptors() {
        var controller = readyController()
        let completion = VMBusPacket(type: .completion, flags: 1, transactionID: 8, payload: vstorBytes(3))
        #expect(vstor(replied(controller.receive(completion)))?.status == NTStatus.invalidParameter)
        let unknown = VMBusPacket(rawType: 0x7777, flags: 1, transactionID: 9, dataOffset: 16, bytes: [UInt8](repeating: 0, count: 80))
        #expect(replied(controller.receive(unknown))?.transactionID == 9)
        for dataOffset in [0, 8, 200] {
            let broken = VMBusPacket(rawType: 9, flags: 1, transactionID: 10, dataOffset: dataOffset, bytes: [UInt8](repeating: 3, count: 96))
            #expect(vstor(replied(controller.receive(broken)))?.status == NTStatus.invalidParameter)
            #expect(vstor(replied(controller.receiveOnSubchannel(broken)))?.status == NTStatus.invalidParameter)
        }
    }

    @Test func badCDBLengths() {
        var controller = readyController()
        let map = SCSITargetMap(disks: [disk0: VirtualDiskGeometry(sizeBytes: mib)])
        for length: UInt8 in [0, 17, 255] {
            var raw = SCSIRequest(address: disk0, cdb: [0x12, 0, 0, 0, 36, 0], direction: .read, dataTransferLength: 36).raw
            raw[8] = length
            guard case .execute(let request) = controller.receive(srbPacket(SCSIRequest(decoding: raw), buffer: contiguousBuffer(address: 0, length: 36))) else {
                Issue.record("not executed")
                continue
            }
            let srb = responseSRB(request.completionPacket(map.plan(request).complete(.success(bytesTransferred: 0))))
            #expect(srb?.srbStatus == SRBStatus.invalidRequest)
            #expect(srb?.senseInfoLength == 0 && srb?.dataTransferLength == 0)
        }
        // A CDB shorter than its opcode's group needs.
        let short = SCSIRequest(address: disk0, cdb: [0x88, 0, 0, 0, 0, 0, 0, 0, 0, 1], direction: .read, dataTransferLength: 512)
        #expect(map.plan(short, bufferLength: 512) == .respond(.checkCondition(.invalidFieldInCDB)))
        #expect(SCSIRequest(decoding: [1, 2, 3]).cdb.isEmpty)
    }

    @Test func absurdDataLengths() {
        let map = SCSITargetMap(disks: [disk0: VirtualDiskGeometry(sizeBytes: mib)])
        let read2 = SCSIRequest(address: disk0, cdb: [0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0], direction: .read, dataTransferLength: .max)
        #expect(map.plan(read2, bufferLength: 512) == .respond(.checkCondition(.invalidFieldInCDB)))
        #expect(map.plan(read2, bufferLength: -5) == .respond(.checkCondition(.invalidFieldInCDB)))
        #expect(map.plan(read2, bufferLength: .max) == .read(SCSITransfer(disk: disk0, byteOffset: 0, length: 1024)))
        let inquiry = SCSIRequest(address: disk0, cdb: [0x12, 0, 0, 0xFF, 0xFF, 0], direction: .read, dataTransferLength: .max)
        #expect(map.plan(inquiry, bufferLength: 0) == .respond(.good()))

        // A 3 GiB transfer claimed against a 256 KiB controller: the buffer itself is refused.
        var controller = readyController()
        var header = [UInt8](repeating: 0, count: 8)
        header[4] = 1
        header += [0, 0, 0, 0xC0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 64)
        let huge = VMBusPacket(type: .dataUsingGPADirect, flags: 1, transactionID: 11, header: header,
                               payload: VStorPacket(operation: .executeSRB, body: read2.raw).encode())
        let reply = replied(controller.receive(huge))
        #expect(vstor(reply)?.status == NTStatus.invalidParameter)
        #expect(responseSRB(reply)?.srbStatus == SRBStatus.invalidRequest && responseSRB(reply)?.dataTransferLength == 0)
    }

    @Test func brokenBufferHeaders() {
        var controller = readyController()
        let payload = VStorPacket(operation: .executeSRB,
                                  body: SCSIRequest(address: disk0, cdb: [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0],
                                                    direction: .read, dataTransferLength: 512).raw).encode()
        let headers: [[UInt8]] = [
            [],                                                          // no header
            [0, 0, 0, 0, 1, 0, 0, 0],                                    // range count 1, no range
            [0, 0, 0, 0, 0, 0, 0, 0],                                    // no ranges
            [0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF],                        // absurd range count
            [0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0x10, 0, 0] + [UInt8](repeating: 0, count: 16),   // offset 4096
            [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],                 // count 0
            [0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 8),    // PFN too large
        ]
        for header in headers {
            let packet = VMBusPacket(type: .dataUsingGPADirect, flags: 1, transactionID: 12, header: header, payload: payload)
            let reply = replied(controller.receive(packet))
            #expect(reply?.transactionID == 12)
            #expect(vstor(reply)?.status == NTStatus.invalidParameter)
            #expect(responseSRB(reply)?.srbStatus == SRBStatus.invalidRequest)
        }
    }

    @Test func callerSuppliedCompletionsAreClamped() {
        var controller = readyController()
        let srb = SCSIRequest(address: disk0, cdb: [0, 0, 0, 0, 0, 0], direction: .none, dataTransferLength: 0)
        guard case .execute(let request) = controller.receive(srbPacket(srb, buffer: nil)) else {
            Issue.record("not executed")
            return
        }
        let odd = SCSICompletion(srbStatus: 1, scsiStatus: 0, sense: [UInt8](repeating: 9, count: 100), dataTransferLength: .max)
        let response = responseSRB(request.completionPacket(odd))
        #expect(response?.senseInfoLength == 20 && response?.dataTransferLength == 0)
    }
}
