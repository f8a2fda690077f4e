import Testing
@testable import KeelVMBus

@Suite struct MessageCodecTests {
    static let samples: [VMBusMessage] = [
        .offerChannel(.init(classID: VMBusDeviceClass.heartbeat, instanceID: VMBusDeviceClass.kvp, flags: 0x11,
                            userDefined: [4, 0, 0, 0], relid: 1, connectionID: 0x2001)),
        .rescindChannelOffer(relid: 7),
        .requestOffers,
        .allOffersDelivered,
        .openChannel(.init(relid: 1, openID: 1, ringGPADL: 0xE1E10, targetVP: 3, downstreamPageOffset: 4,
                           userData: [1, 2, 3])),
        .openChannelResult(relid: 1, openID: 1, status: 0),
        .closeChannel(relid: 1),
        .gpadlHeader(.init(relid: 1, handle: 0xE1E10, totalPages: 8, pfns: Array(100..<108))),
        .gpadlBody(.init(messageNumber: 0, handle: 0xE1E10, pfns: [1, 2, 3])),
        .gpadlCreated(relid: 1, handle: 0xE1E10, status: 0),
        .gpadlTeardown(relid: 1, handle: 0xE1E10),
        .gpadlTorndown(handle: 0xE1E10),
        .relidReleased(relid: 9),
        contact(.win10V5_3),
        .versionResponse(.init(versionSupported: true, connectionState: 0, messageConnectionID: 1)),
        .unload,
        .unloadResponse,
        .tlConnectRequest(endpointID: VMBusDeviceClass.scsi, serviceID: VMBusDeviceClass.network),
        .modifyChannel(relid: 4, targetVP: 1),
        .modifyChannelResponse(relid: 4, status: 0),
    ]

    @Test(arguments: samples) func roundTrip(_ message: VMBusMessage) throws {
        let bytes = message.encode()
        #expect(bytes.count >= message.type.minimumSize)
        #expect(bytes.count <= 240)
        #expect(try VMBusMessage.decode(bytes) == message)
    }

    @Test func hostMessagesMeetLinuxMinimumSizes() {
        let minimums: [VMBusMessageType: Int] = [
            .offerChannel: 196, .rescindChannelOffer: 12, .openChannelResult: 20, .gpadlCreated: 20,
            .gpadlTorndown: 12, .versionResponse: 16, .modifyChannelResponse: 16,
        ]
        for message in Self.samples where !message.type.isGuestToHost {
            #expect(message.encode().count >= minimums[message.type, default: 8], "\(message.type)")
        }
    }

    @Test func offerChannelExactLayout() {
        let bytes = VMBusMessage.offerChannel(.init(
            classID: VMBusDeviceClass.heartbeat, instanceID: VMBusDeviceClass.shutdown, flags: 0x0011,
            mmioMegabytes: 0, userDefined: [4, 0, 0, 0], subchannelIndex: 0, relid: 0x1234, monitorID: 0xFF,
            monitorAllocated: false, dedicatedInterrupt: true, connectionID: 0x2001)).encode()
        #expect(bytes.count == 196)
        #expect(Array(bytes[0..<8]) == [1, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(bytes[8..<24]).hex == "394f16571591784eab55382f3bd5422d")
        #expect(Array(bytes[24..<40]).hex == "31600b0e13523449818b38d90ced39db")
        #expect(bytes[40..<56].allSatisfy { $0 == 0 })
        #expect(Array(bytes[56..<60]) == [0x11, 0, 0, 0])
        #expect(Array(bytes[60..<64]) == [4, 0, 0, 0])
        #expect(Array(bytes[180..<184]) == [0, 0, 0, 0])
        #expect(Array(bytes[184..<188]) == [0x34, 0x12, 0, 0])
        #expect(bytes[188] == 0xFF)
        #expect(bytes[189] == 0)
        #expect(Array(bytes[190..<192]) == [1, 0])
        #expect(Array(bytes[192..<196]) == [0x01, 0x20, 0, 0])
    }

    @Test func versionResponseAndOpenResultExactLayout() {
        let version = VMBusMessage.versionResponse(.init(versionSupported: true, connectionState: 0,
                                                         messageConnectionID: 1)).encode()
        #expect(version == [15, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
        let open = VMBusMessage.openChannelResult(relid: 1, openID: 1, status: 0xC000_0001).encode()
        #expect(open == [6, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0xC0])
    }

    @Test func initiateContactDecodesFromLinuxBytes() throws {
        var bytes = [UInt8](repeating: 0, count: 40)
        bytes[0] = 14
        bytes[8...11] = [3, 0, 5, 0]  // 5.3
        bytes[12] = 0  // target VP 0
        bytes[16] = 2  // SINT 2
        bytes[24...26] = [0, 0x10, 0]  // monitor page 1 0x1000
        bytes[32...34] = [0, 0x20, 0]
        guard case let .initiateContact(c) = try VMBusMessage.decode(bytes) else {
            Issue.record("wrong case")
            return
        }
        #expect(c.version == .win10V5_3)
        #expect(c.messageSINT == 2)
        #expect(c.monitorPage1 == 0x1000)
        #expect(c.monitorPage2 == 0x2000)
    }

    @Test func truncatedMessagesAreRejected() {
        for message in Self.samples {
            let bytes = message.encode()
            let short = Array(bytes.prefix(message.type.minimumSize - 1))
            #expect(throws: VMBusMessageError.self) { try VMBusMessage.decode(short) }
        }
        #expect(throws: VMBusMessageError.truncated(type: 0, size: 4, minimum: 8)) {
            try VMBusMessage.decode([0, 0, 0, 0])
        }
    }

    @Test func oversizedAndUnknownMessagesAreRejected() {
        var big = VMBusMessage.requestOffers.encode()
        big += [UInt8](repeating: 0, count: 300)
        #expect(throws: VMBusMessageError.oversized(size: 308)) { try VMBusMessage.decode(big) }
        for type: UInt32 in [0, 18, 19, 20, 23, 25, 0xFFFF_FFFF] {
            #expect(throws: VMBusMessageError.unknownType(type)) {
                try VMBusMessage.decode([UInt8(type & 0xFF), UInt8(type >> 8 & 0xFF), UInt8(type >> 16 & 0xFF),
                                         UInt8(type >> 24), 0, 0, 0, 0] + [UInt8](repeating: 0, count: 40))
            }
        }
    }

    @Test func gpadlPartialPFNsAreMalformed() {
        var body = VMBusMessage.gpadlBody(.init(handle: 1, pfns: [1, 2])).encode()
        body.removeLast(3)
        #expect(throws: VMBusMessageError.self) { try VMBusMessage.decode(body) }
        var header = VMBusMessage.gpadlHeader(.init(relid: 1, handle: 1, totalPages: 2, pfns: [1, 2])).encode()
        header.append(0)
        #expect(throws: VMBusMessageError.self) { try VMBusMessage.decode(header) }
    }
}
