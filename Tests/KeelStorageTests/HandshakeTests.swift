import KeelStorage
import KeelVMBus
import Testing

@Suite struct HandshakeTests {
    @Test func linuxInitAcceptedAt62() {
        var controller = StorageControllerProtocol()
        let replies = linuxHandshake(&controller)
        #expect(replies.count == 4)
        for reply in replies {
            #expect(reply.type == .completion)
            #expect(reply.transactionID == initID)
            #expect(reply.payload.count == 64)
            #expect(vstor(reply)?.operation == VStorOperation.completeIO.rawValue)
            #expect(vstor(reply)?.status == NTStatus.success)
            #expect(vstor(reply)?.flags == 0)
        }
        #expect(vstor(replies[1])?.protocolVersion == 0x0602)
        #expect(controller.negotiatedVersion == 0x0602)
        #expect(controller.phase == .ready)
    }

    @Test func hostRejecting62NegotiatesSixZero() {
        var controller = StorageControllerProtocol(configuration: .init(acceptedVersions: [0x0600, 0x0501]))
        let replies = linuxHandshake(&controller)
        #expect(replies.count == 5)
        #expect(vstor(replies[1])?.operation == VStorOperation.completeIO.rawValue)
        #expect(vstor(replies[1])?.status == NTStatus.revisionMismatch)
        #expect(replies[1].payload.count == 64)
        #expect(vstor(replies[2])?.status == NTStatus.success)
        #expect(controller.negotiatedVersion == 0x0600)
        #expect(controller.phase == .ready)
    }

    @Test func allVersionsRejectedLeavesTheControllerUninitialized() {
        var controller = StorageControllerProtocol(configuration: .init(acceptedVersions: [0x0402]))
        let replies = linuxHandshake(&controller)
        #expect(replies.map { vstor($0)?.status } == [NTStatus.success, NTStatus.revisionMismatch, NTStatus.revisionMismatch,
                                                      NTStatus.revisionMismatch, NTStatus.invalidDeviceState,
                                                      NTStatus.invalidDeviceState])
        #expect(controller.phase == .initializing)
        #expect(controller.negotiatedVersion == nil)
    }

    @Test func propertiesContent() {
        var controller = StorageControllerProtocol()
        let props = VStorChannelProperties(decoding: vstor(linuxHandshake(&controller)[2])?.body ?? [])
        #expect(props == VStorChannelProperties(maxChannelCount: 0, supportsMultiChannel: false, maxTransferBytes: 0x40000))

        var multi = StorageControllerProtocol(configuration: .init(maxTransferBytes: 0x80123, maxSubchannels: 7))
        let body = vstor(linuxHandshake(&multi)[2])?.body ?? []
        #expect(VStorChannelProperties(decoding: body) ==
                VStorChannelProperties(maxChannelCount: 7, supportsMultiChannel: true, maxTransferBytes: 0x80000))
        #expect(Array(body.prefix(24)) == [0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func replySizes() {
        // Pre-Win8 guests send 48-byte packets until a Win8+ version is agreed.
        var controller = StorageControllerProtocol()
        let begin = replied(controller.receive(inband(.beginInitialization, size: 48)))
        #expect(begin?.payload.count == 48)
        let version = replied(controller.receive(inband(.queryProtocolVersion, body: versionBody(0x0501), size: 48)))
        #expect(version?.payload.count == 64)
        #expect(replied(controller.receive(inband(.queryProperties, size: 48)))?.payload.count == 64)
        // Never shrink a 64-byte request's reply before negotiation either.
        var fresh = StorageControllerProtocol()
        #expect(replied(fresh.receive(inband(.beginInitialization)))?.payload.count == 64)
        #expect(replied(fresh.receive(inband(.queryProtocolVersion, body: versionBody(0x0999))))?.payload.count == 64)
    }

    @Test func outOfOrderAndUnknownOperationsAreStillAnswered() {
        var controller = StorageControllerProtocol()
        #expect(vstor(replied(controller.receive(inband(.endInitialization))))?.status == NTStatus.invalidDeviceState)
        #expect(vstor(replied(controller.receive(inband(.queryProperties))))?.status == NTStatus.invalidDeviceState)
        #expect(vstor(replied(controller.receive(inband(.beginInitialization))))?.status == NTStatus.success)
        #expect(vstor(replied(controller.receive(inband(.beginInitialization))))?.status == NTStatus.invalidDeviceState)
        #expect(vstor(replied(controller.receive(inband(.queryProperties))))?.status == NTStatus.invalidDeviceState)
        let unknown = VMBusPacket(type: .dataInBand, flags: 1, transactionID: 5, payload: vstorBytes(99))
        let reply = replied(controller.receive(unknown))
        #expect(reply?.transactionID == 5)
        #expect(vstor(reply)?.operation == VStorOperation.completeIO.rawValue)
        #expect(vstor(reply)?.status == NTStatus.invalidParameter)
        #expect(vstor(replied(controller.receive(inband(.completeIO))))?.status == NTStatus.invalidParameter)
        #expect(vstor(replied(controller.receive(inband(.fcHBAData))))?.status == NTStatus.invalidParameter)
        // No completion requested: no reply.
        #expect(controller.receive(inband(.queryProtocolVersion, body: versionBody(0x0602), flags: 0)) == .none)
        #expect(controller.negotiatedVersion == 0x0602)
    }

    @Test func subchannelsAreClampedAndCountedOnce() {
        var controller = readyController(.init(maxSubchannels: 3))
        let action = controller.receive(inband(.createSubChannels, body: [8, 0], id: 42))
        guard case .offerSubchannels(let first, let count, let completion) = action else {
            Issue.record("no offer: \(action)")
            return
        }
        #expect(first == 1 && count == 3)
        #expect(completion?.transactionID == 42)
        #expect(vstor(completion)?.status == NTStatus.success)
        #expect(controller.receive(inband(.createSubChannels, body: [2, 0], id: 43))
                == .offerSubchannels(firstIndex: 4, count: 0, completion: completion.map {
                    VMBusPacket(type: .completion, transactionID: 43, payload: $0.payload)
                }))
        #expect(controller.subchannelsOffered == 3)
        #expect(vstor(replied(controller.receive(inband(.createSubChannels, body: [0, 0]))))?.status == NTStatus.invalidParameter)

        var single = readyController()
        #expect(vstor(replied(single.receive(inband(.createSubChannels, body: [4, 0]))))?.status == NTStatus.invalidParameter)
        var early = StorageControllerProtocol(configuration: .init(maxSubchannels: 3))
        #expect(vstor(replied(early.receive(inband(.createSubChannels, body: [4, 0]))))?.status == NTStatus.invalidDeviceState)
    }

    @Test func resetsCompleteWithSuccessAfterOutstandingIO() {
        var controller = readyController()
        for op in [VStorOperation.resetBus, .resetLUN, .resetAdapter] {
            let action = controller.receive(inband(op, id: 0xFFFF_FFFF_FFFF_FFFC))
            guard case .completeAfterOutstandingIO(let packet) = action else {
                Issue.record("\(op): \(action)")
                continue
            }
            #expect(packet.transactionID == 0xFFFF_FFFF_FFFF_FFFC)
            #expect(vstor(packet)?.status == NTStatus.success)
            #expect(packet.payload.count == 64)
        }
        #expect(controller.phase == .ready)
    }

    @Test func srbBeforeEndInitializationIsAnsweredWithAnError() {
        var controller = StorageControllerProtocol()
        _ = controller.receive(inband(.beginInitialization))
        let srb = SCSIRequest(address: disk0, cdb: [0, 0, 0, 0, 0, 0], direction: .none, dataTransferLength: 0)
        let reply = replied(controller.receive(srbPacket(srb, buffer: nil, id: 9)))
        #expect(reply?.transactionID == 9)
        #expect(vstor(reply)?.status == NTStatus.invalidDeviceState)
        #expect(responseSRB(reply)?.srbStatus == SRBStatus.error)
        #expect(responseSRB(reply)?.dataTransferLength == 0)
    }

    @Test func subchannelsCarryOnlySRBs() {
        var controller = readyController(.init(maxSubchannels: 2))
        _ = controller.receive(inband(.createSubChannels, body: [2, 0]))
        #expect(vstor(replied(controller.receiveOnSubchannel(inband(.beginInitialization))))?.status == NTStatus.invalidDeviceState)
        let srb = SCSIRequest(address: disk0, cdb: [0, 0, 0, 0, 0, 0], direction: .none, dataTransferLength: 0)
        guard case .execute(let request) = controller.receiveOnSubchannel(srbPacket(srb, buffer: nil, id: 77)) else {
            Issue.record("not executed")
            return
        }
        #expect(request.transactionID == 77 && request.srb == srb && request.buffer == nil)
        controller.reset()
        #expect(controller.phase == .awaitingBegin && controller.negotiatedVersion == nil && controller.subchannelsOffered == 0)
    }
}
