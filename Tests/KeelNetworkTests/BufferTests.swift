import KeelNetwork
import KeelVMBus
import Testing

/// netvsc_init_buf's checks on SEND_RECV_BUF_COMPLETE: at least 28 bytes, status success, one
/// section at offset 0 with sub-allocations of at least 68 bytes that fit the buffer.
func linuxAcceptsReceiveCompletion(_ payload: [UInt8], bufferSize: Int) -> Bool {
    guard payload.count >= 28, le32(payload, 0) == 102, le32(payload, 4) == NVSPStatus.success else { return false }
    let size = UInt64(le32(payload, 16)), count = UInt64(le32(payload, 20))
    return le32(payload, 8) == 1 && le32(payload, 12) == 0 && size >= 68 && size * count <= UInt64(bufferSize)
        && UInt64(le32(payload, 24)) == size * count
}

@Suite struct BufferTests {
    func completion(_ guest: GuestHarness, type: UInt32) -> VMBusPacket? {
        guest.completions.last { le32($0.payload, 0) == type }
    }

    @Test func receiveBufferCompletionSatisfiesLinux() throws {
        var guest = GuestHarness()
        guest.nvspInit()
        let reply = try #require(completion(guest, type: 102))
        #expect(reply.payload.count == 40)
        #expect(linuxAcceptsReceiveCompletion(reply.payload, bufferSize: guest.receiveBufferSize))
        #expect(Array(fields(reply.payload).prefix(7)) == [102, 1, 1, 0, 1792, 146, 1792 * 146])
        #expect(guest.adapter.receiveBufferLayout?.sectionSize == 1792)
        #expect(guest.adapter.receiveBufferLayout?.sectionCount == 146)
    }

    @Test func linuxDefaultSixteenMiBBuffer() throws {
        var guest = GuestHarness(receivePageCount: 4096, sendPageCount: 255)
        guest.nvspInit()
        let reply = try #require(completion(guest, type: 102))
        #expect(linuxAcceptsReceiveCompletion(reply.payload, bufferSize: 16 << 20))
        // Large enough for 16 KiB sections: a coalesced packet is one message, not a chain.
        #expect(Array(fields(reply.payload).prefix(7)) == [102, 1, 1, 0, 16384, 1024, 16 << 20])
        #expect(guest.adapter.sendBufferSectionCount == 255 * 4096 / 6144)
    }

    @Test func bufferTooSmallForEnoughLargeSectionsKeepsFrameSizedOnes() throws {
        var guest = GuestHarness(receivePageCount: 127 * 4 + 3, sendPageCount: 16)
        guest.nvspInit()
        let reply = try #require(completion(guest, type: 102))
        #expect(linuxAcceptsReceiveCompletion(reply.payload, bufferSize: guest.receiveBufferSize))
        #expect(le32(reply.payload, 16) == 1792)
    }

    @Test func sendBufferCompletionAnnouncesSixKiBSections() throws {
        var guest = GuestHarness()
        guest.nvspInit()
        let reply = try #require(completion(guest, type: 105))
        #expect(reply.payload.count >= 12)
        #expect(Array(fields(reply.payload).prefix(3)) == [105, NVSPStatus.success, 6144])
        #expect(guest.adapter.sendBufferSectionCount == 10)
    }

    @Test func bufferRequestsAskTheCallerToMapTheGPADL() {
        var adapter = NetworkAdapterProtocol(configuration: .init(macAddress: testMAC))
        _ = adapter.receive(inband([1, NVSPVersion.v61, NVSPVersion.v61]))
        #expect(adapter.receive(bufferRequest(101, gpadl: 0xE1, id: 0xCAFE)) == [.mapReceiveBuffer(gpadlHandle: 0xE1)])
        #expect(adapter.receive(bufferRequest(104, gpadl: 0xE2, id: 0)) == [.mapSendBuffer(gpadlHandle: 0xE2)])
    }

    @Test func unusableBuffersAreRefused() throws {
        for pages: [UInt64]? in [nil, [], [0x1000_0800], (0..<20000).map { UInt64($0) << 12 }] {
            var guest = GuestHarness()
            guest.receivePages = pages
            guest.sendPages = [0x40_0000]  // one page: smaller than a 6144-byte section
            guest.nvspInit()
            let receive = try #require(completion(guest, type: 102))
            let send = try #require(completion(guest, type: 105))
            #expect(le32(receive.payload, 4) == NVSPStatus.failure)
            #expect(le32(send.payload, 4) == NVSPStatus.failure)
            #expect(guest.diagnostics.filter { $0.kind == .bufferRefused }.count == 2)
        }
    }

    @Test func aSecondBufferIsRefused() throws {
        var guest = GuestHarness()
        guest.nvspInit()
        let replyResult = guest.send(bufferRequest(101, gpadl: 0xE3, id: 0xCAFE, transactionID: 55))
        let reply = try #require(replyResult)
        #expect(Array(fields(reply.payload).prefix(2)) == [102, NVSPStatus.failure])
        #expect(guest.adapter.receiveBufferLayout?.sectionCount == 146)
    }

    @Test func revokeReleasesTheBuffersWithoutCompletions() {
        var guest = GuestHarness()
        guest.nvspInit()
        #expect(guest.nvspRequest([103, 0xCAFE], flags: 0) == nil)
        #expect(guest.nvspRequest([106, 0], flags: 0) == nil)
        #expect(guest.released == [.releaseReceiveBuffer(gpadlHandle: 0xE1), .releaseSendBuffer(gpadlHandle: 0xE2)])
        #expect(guest.adapter.receiveBufferLayout == nil)
        #expect(guest.adapter.sendBufferSectionCount == nil)
        guest.nvspRequest([103, 0xCAFE], flags: 0)
        #expect(guest.diagnostics.count == 1)
    }

    @Test func attachingWithoutARequestOnlyLogs() {
        var adapter = NetworkAdapterProtocol(configuration: .init(macAddress: testMAC))
        let actions = adapter.attachReceiveBuffer(pages: [0x1000]) + adapter.attachSendBuffer(pages: [0x1000])
        #expect(actions.diagnostics.count == 2)
        #expect(actions.sent.isEmpty)
    }

    @Test func bufferWithoutCompletionRequestedIsStillAttached() {
        var guest = GuestHarness()
        guest.nvspRequest([1, NVSPVersion.v61, NVSPVersion.v61])
        #expect(guest.send(inband([101, 0xE1, 0xCAFE], id: 3, flags: 0)) == nil)
        #expect(guest.adapter.receiveBufferLayout?.sectionCount == 146)
    }
}
