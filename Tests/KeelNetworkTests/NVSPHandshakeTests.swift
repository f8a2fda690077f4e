import KeelNetwork
import KeelVMBus
import Testing

@Suite struct NVSPHandshakeTests {
    @Test func acceptsTheFirstVersionLinuxAsks() throws {
        var guest = GuestHarness()
        let replyResult = guest.nvspRequest([1, NVSPVersion.v61, NVSPVersion.v61])
        let reply = try #require(replyResult)
        #expect(reply.rawType == VMBusPacketType.completion.rawValue)
        #expect(reply.transactionID == guest.nextID)
        #expect(reply.payload.count == 40)
        #expect(Array(fields(reply.payload).prefix(4)) == [2, NVSPVersion.v61, 34, NVSPStatus.success])
        #expect(guest.adapter.negotiatedVersion == NVSPVersion.v61)
    }

    @Test func linuxFallsBackThroughItsList() throws {
        let configuration = NetworkAdapterProtocol.Configuration(macAddress: testMAC, acceptedVersions: [NVSPVersion.v4])
        var guest = GuestHarness(configuration)
        var statuses: [UInt32] = []
        for version in NVSPVersion.linuxProbeOrder {
            let replyResult = guest.nvspRequest([1, version, version])
            let reply = try #require(replyResult)
            statuses.append(le32(reply.payload, 12))
            if statuses.last == NVSPStatus.success { break }
        }
        #expect(statuses == [NVSPStatus.protocolTooNew, NVSPStatus.protocolTooNew, NVSPStatus.protocolTooNew, NVSPStatus.success])
        #expect(guest.adapter.negotiatedVersion == NVSPVersion.v4)
    }

    @Test func picksTheHighestAcceptedVersionInARange() throws {
        let configuration = NetworkAdapterProtocol.Configuration(macAddress: testMAC,
                                                                 acceptedVersions: [NVSPVersion.v5, NVSPVersion.v6])
        var guest = GuestHarness(configuration)
        let oldResult = guest.nvspRequest([1, NVSPVersion.v1, NVSPVersion.v2])
        let old = try #require(oldResult)
        #expect(le32(old.payload, 12) == NVSPStatus.protocolTooOld)
        let rangedResult = guest.nvspRequest([1, NVSPVersion.v2, 0x0007_0000])
        let ranged = try #require(rangedResult)
        #expect(Array(fields(ranged.payload).prefix(4)) == [2, NVSPVersion.v6, 34, NVSPStatus.success])
    }

    @Test func defaultConfigurationAcceptsSixOneDownToTwo() {
        for version in NVSPVersion.linuxProbeOrder {
            var guest = GuestHarness()
            let reply = guest.nvspRequest([1, version, version])
            let accepted = reply.map { le32($0.payload, 12) } == NVSPStatus.success
            #expect(accepted == (version != NVSPVersion.v1))
        }
    }

    @Test func ndisConfigAndVersionAreAnsweredOnlyWhenAsked() {
        var guest = GuestHarness()
        guest.nvspRequest([1, NVSPVersion.v61, NVSPVersion.v61])
        #expect(guest.nvspRequest([125, 1514, 0, 0x8], flags: 0) == nil)
        #expect(guest.nvspRequest([100, 6, 30], flags: 0) == nil)
        #expect(guest.adapter.guestMTU == 1514)
        #expect(guest.adapter.ndisVersion == 0x0006_001E)
        let asked = guest.nvspRequest([125, 1514, 0, 0], flags: 1)
        #expect(asked.map { Array(fields($0.payload).prefix(2)) } == [125, NVSPStatus.success])
        #expect(guest.diagnostics.isEmpty)
    }

    @Test func requestsBeforeInitFail() throws {
        var guest = GuestHarness()
        let replyResult = guest.send(bufferRequest(101, gpadl: 1, id: 0xCAFE))
        let reply = try #require(replyResult)
        #expect(Array(fields(reply.payload).prefix(2)) == [102, NVSPStatus.failure])
        #expect(guest.diagnostics.count == 1)
        #expect(guest.adapter.receiveBufferLayout == nil)
    }

    @Test func subchannelRequestGrantsNone() throws {
        var guest = GuestHarness()
        guest.nvspInit(version: NVSPVersion.v5)
        let replyResult = guest.nvspRequest([133, 1, 3])
        let reply = try #require(replyResult)
        #expect(reply.payload.count == 40)
        #expect(Array(fields(reply.payload).prefix(3)) == [133, NVSPStatus.success, 0])
    }

    @Test func repeatedInitStartsOver() {
        var guest = GuestHarness()
        guest.nvspInit()
        #expect(guest.adapter.receiveBufferLayout != nil)
        let reply = guest.nvspRequest([1, NVSPVersion.v6, NVSPVersion.v6])
        #expect(reply.map { le32($0.payload, 12) } == NVSPStatus.success)
        #expect(guest.released == [.releaseReceiveBuffer(gpadlHandle: 0xE1), .releaseSendBuffer(gpadlHandle: 0xE2)])
        #expect(guest.adapter.receiveBufferLayout == nil)
        #expect(guest.adapter.negotiatedVersion == NVSPVersion.v6)
    }

    @Test func resetForgetsTheSessionButKeepsTheLink() {
        var guest = GuestHarness()
        guest.linuxProbe()
        _ = guest.adapter.setLink(up: false)
        guest.adapter.reset()
        #expect(guest.adapter.negotiatedVersion == nil)
        #expect(!guest.adapter.rndisInitialized)
        #expect(guest.adapter.receiveBufferLayout == nil)
        #expect(!guest.adapter.linkUp)
    }
}
