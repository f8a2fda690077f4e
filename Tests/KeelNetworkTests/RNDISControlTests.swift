import KeelNetwork
import KeelVMBus
import Testing

/// rndis_filter_query_device's checks on a QUERY_CMPLT: the data, or nil where Linux fails.
func linuxQueryResult(_ response: [UInt8]?, maxSize: Int) -> [UInt8]? {
    guard let response, response.count >= 24, le32(response, 0) == 0x8000_0004 else { return nil }
    let messageLength = Int(le32(response, 4)), length = Int(le32(response, 16)), offset = Int(le32(response, 20))
    guard length <= maxSize, offset >= 16, messageLength - 8 >= offset, messageLength - 8 - offset >= length else { return nil }
    return Array(response[(8 + offset)..<(8 + offset + length)])
}

@Suite struct RNDISControlTests {
    func initializedGuest(_ configuration: NetworkAdapterProtocol.Configuration = .init(macAddress: testMAC)) -> GuestHarness {
        var guest = GuestHarness(configuration)
        guest.nvspInit()
        guest.control(RNDISRequest.initialize(1))
        return guest
    }

    @Test func initializeCompleteIsByteExact() {
        var guest = GuestHarness()
        guest.nvspInit()
        let response = guest.control(RNDISRequest.initialize(0x11))
        #expect(response == u32Bytes([0x8000_0002, 52, 0x11, 0, 1, 0, 1, 0, 8, UInt32(NetworkAdapterProtocol.maxRNDISTransferBytes), 3, 0, 0]))
        #expect(guest.received.last?.channelType == 1)
        #expect(guest.adapter.rndisInitialized)
    }

    @Test func macQueriesReturnExactlySixBytes() {
        var guest = initializedGuest()
        let permanent = guest.control(RNDISRequest.query(3, RNDISOID.permanentAddress))
        #expect(permanent == u32Bytes([0x8000_0004, 30, 3, 0, 6, 16]) + testMAC)
        #expect(linuxQueryResult(permanent, maxSize: 6) == testMAC)
        let current = guest.control(RNDISRequest.query(4, RNDISOID.currentAddress))
        #expect(linuxQueryResult(current, maxSize: 6) == testMAC)
    }

    @Test func u32Queries() {
        var guest = initializedGuest()
        let expected: [(UInt32, UInt32)] = [(RNDISOID.maximumFrameSize, 1500), (RNDISOID.mediaConnectStatus, 0),
                                            (RNDISOID.linkSpeed, 100_000_000), (RNDISOID.maximumTotalSize, 1514),
                                            (RNDISOID.mediaInUse, 0)]
        for (index, (oid, value)) in expected.enumerated() {
            let response = guest.control(RNDISRequest.query(UInt32(index + 10), oid))
            #expect(linuxQueryResult(response, maxSize: 4) == u32Bytes([value]))
            #expect(response.map { le32($0, 8) } == UInt32(index + 10))
        }
    }

    @Test func offloadCapabilitiesPassLinuxChecks() throws {
        var guest = initializedGuest()
        let response = guest.control(RNDISRequest.query(5, RNDISOID.offloadHardwareCapabilities,
                                                        input: [0xA7, 3, 156, 0] + [UInt8](repeating: 0, count: 152)))
        let caps = try #require(linuxQueryResult(response, maxSize: 156))
        #expect(caps.count == 156)
        #expect(caps[0] == 0xA7 && caps[1] == 3 && Int(le16(caps, 2)) == 156)
        // What rndis_netdev_set_hwcaps tests: all of TCP4 (0x14) and TCP6 (0x15), UDP, LSOv2 on 802.3, RSC.
        #expect(le32(caps, 8) & 0x14 == 0x14 && le32(caps, 8) & 0x40 != 0)
        #expect(le32(caps, 24) & 0x15 == 0x15 && le32(caps, 24) & 0x40 != 0)
        #expect(le32(caps, 80) & 2 != 0 && le32(caps, 84) == 64000)
        #expect(le32(caps, 92) & 2 != 0 && le32(caps, 96) == 64000 && le32(caps, 104) & 5 == 5)
        #expect(caps[144] == 1 && caps[145] == 1)
    }

    @Test func olderProtocolsGetOlderRevisions() throws {
        for (version, revision, size) in [(NVSPVersion.v4, UInt8(2), 144), (NVSPVersion.v2, UInt8(1), 112)] {
            var guest = GuestHarness()
            guest.nvspInit(version: version)
            guest.control(RNDISRequest.initialize(1))
            let response = guest.control(RNDISRequest.query(5, RNDISOID.offloadHardwareCapabilities))
            let caps = try #require(linuxQueryResult(response, maxSize: 156))
            #expect(caps.count == size && caps[1] == revision && Int(le16(caps, 2)) == size)
        }
    }

    @Test func offloadParametersAreAccepted() {
        var guest = initializedGuest()
        for size in [28, 22] {
            let response = guest.control(RNDISRequest.set(6, RNDISOID.offloadParameters,
                                                          [0x80, 3, UInt8(size), 0] + [UInt8](repeating: 0, count: size - 4)))
            #expect(response == u32Bytes([0x8000_0005, 16, 6, RNDISStatus.success]))
        }
    }

    @Test func unsupportedOIDsFailCleanly() {
        var guest = initializedGuest()
        for (id, oid) in [(20, RNDISOID.receiveScaleCapabilities), (21, RNDISOID.friendlyName), (22, UInt32(0x0102_0304))] {
            let response = guest.control(RNDISRequest.query(UInt32(id), oid))
            #expect(response == u32Bytes([0x8000_0004, 24, UInt32(id), RNDISStatus.notSupported, 0, 16]))
        }
        let rss = guest.control(RNDISRequest.set(23, RNDISOID.receiveScaleParameters, [UInt8](repeating: 1, count: 40)))
        #expect(rss == u32Bytes([0x8000_0005, 16, 23, RNDISStatus.notSupported]))
    }

    @Test func friendlyNameIsUTF16() {
        var guest = initializedGuest(.init(macAddress: testMAC, friendlyName: "keel0"))
        let response = guest.control(RNDISRequest.query(4, RNDISOID.friendlyName))
        let name: [UInt8] = [0x6B, 0, 0x65, 0, 0x65, 0, 0x6C, 0, 0x30, 0, 0, 0]
        #expect(linuxQueryResult(response, maxSize: 512) == name)
    }

    @Test func theLongestResponseFitsASectionEvenAtTheSmallestMTU() throws {
        let name = String(repeating: "n", count: 400)
        var guest = initializedGuest(.init(macAddress: testMAC, mtu: 68, friendlyName: name))
        #expect(guest.adapter.receiveBufferLayout?.sectionSize == 576)
        let response = guest.control(RNDISRequest.query(4, RNDISOID.friendlyName))
        let data = try #require(linuxQueryResult(response, maxSize: 512))
        #expect(data.count == 512 && data.suffix(2) == [0, 0])
        #expect(linuxQueryResult(guest.control(RNDISRequest.query(5, RNDISOID.maximumFrameSize)), maxSize: 4) == u32Bytes([68]))
    }

    @Test func packetFilterIsRecorded() {
        var guest = initializedGuest()
        #expect(!guest.adapter.acceptsFrames)
        let set = guest.control(RNDISRequest.set(10, RNDISOID.currentPacketFilter, u32Bytes([0x0D])))
        #expect(set == u32Bytes([0x8000_0005, 16, 10, 0]))
        #expect(guest.adapter.packetFilter == 0x0D)
        #expect(guest.adapter.acceptsFrames)
        let query = guest.control(RNDISRequest.query(11, RNDISOID.currentPacketFilter))
        #expect(linuxQueryResult(query, maxSize: 4) == u32Bytes([0x0D]))
        guest.control(RNDISRequest.set(12, RNDISOID.currentPacketFilter, u32Bytes([0])))
        #expect(!guest.adapter.acceptsFrames)
        let short = guest.control(RNDISRequest.set(13, RNDISOID.currentPacketFilter, [1, 0]))
        #expect(short == u32Bytes([0x8000_0005, 16, 13, RNDISStatus.invalidData]))
    }

    @Test func keepaliveAndReset() {
        var guest = initializedGuest()
        #expect(guest.control(RNDISRequest.keepalive(77)) == u32Bytes([0x8000_0008, 16, 77, 0]))
        #expect(guest.control(RNDISRequest.reset()) == u32Bytes([0x8000_0006, 16, 0, 0]))
        #expect(guest.adapter.rndisInitialized)
    }

    @Test func haltHasNoResponse() {
        var guest = initializedGuest()
        guest.control(RNDISRequest.set(10, RNDISOID.currentPacketFilter, u32Bytes([0x0D])))
        let before = guest.received.count
        let completion = guest.sendGPA(RNDISRequest.halt(9), channelType: 1)
        #expect(completion.map { le32($0.payload, 4) } == NVSPStatus.success)
        #expect(guest.received.count == before)
        #expect(!guest.adapter.rndisInitialized)
        #expect(guest.adapter.packetFilter == 0)
    }

    @Test func wholeLinuxProbeGetsOneResponsePerRequest() {
        var guest = GuestHarness()
        guest.linuxProbe()
        #expect(guest.received.map { le32($0.message, 8) } == Array(1...10))
        #expect(guest.received.allSatisfy { $0.channelType == 1 })
        #expect(guest.diagnostics.isEmpty)
        #expect(guest.adapter.acceptsFrames)
        #expect(guest.adapter.outstandingDeliveries == 0)
    }
}
