import KeelSystem
import Testing
@testable import KeelVMBus

@Suite struct ServerBringUpTests {
    static let instance = VMBusGUID("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee") ?? .zero

    /// The recorded Linux 6.12 bring-up of the heartbeat channel (hyperv-platform.md §8 steps 5–7).
    @Test func fullBringUp() throws {
        let memory = makeMemory()
        var server = VMBusServer(configuration: .init(vpCount: 2), memory: memory)
        let (relid, early) = try server.addChannel(.integrationComponent(classID: VMBusDeviceClass.heartbeat,
                                                                         instanceID: Self.instance))
        #expect(relid == 1)
        #expect(early.messages.isEmpty)

        let hello = server.receive(contact(.win10V5_3).encode(), connectionID: 4)
        #expect(messages(hello) == [.versionResponse(.init(versionSupported: true, messageConnectionID: 1))])
        #expect(hello.events == [.connected(version: .win10V5_3, targetVP: 0, sint: 2)])

        let offers = server.receive(VMBusMessage.requestOffers.encode(), connectionID: 1)
        #expect(messages(offers) == [
            .offerChannel(.init(classID: VMBusDeviceClass.heartbeat, instanceID: Self.instance, flags: 0x11,
                                userDefined: [4, 0, 0, 0], relid: 1, monitorID: 0xFF, monitorAllocated: false,
                                dedicatedInterrupt: true, connectionID: 0x2001)),
            .allOffersDelivered,
        ])
        #expect(offers.messages.allSatisfy { $0.targetVP == 0 && $0.sint == 2 })

        let pfns: [UInt64] = [40, 41, 42, 43, 80, 81, 82, 83]  // not contiguous
        let created = send(&server, gpadlMessages(relid: 1, handle: 0xE1E10, pfns: pfns))
        #expect(messages(created) == [.gpadlCreated(relid: 1, handle: 0xE1E10, status: 0)])

        let open = server.receive(VMBusMessage.openChannel(.init(
            relid: 1, openID: 1, ringGPADL: 0xE1E10, targetVP: 1, downstreamPageOffset: 4)).encode(), connectionID: 1)
        #expect(messages(open) == [.openChannelResult(relid: 1, openID: 1, status: 0)])
        guard case let .channelOpened(info)? = open.events.first else {
            Issue.record("no open event")
            return
        }
        #expect(info.guestToHostRing == [40, 41, 42, 43].map { $0 << 12 })
        #expect(info.hostToGuestRing == [80, 81, 82, 83].map { $0 << 12 })
        #expect(info.targetVP == 1)
        #expect(info.signalConnectionID == 0x2001)
        #expect(server.openChannel(forSignalConnectionID: 0x2001) == info)
        #expect(server.openChannel(forSignalConnectionID: 0x2002) == nil)
        #expect(server.openChannel(forSignalConnectionID: 0x1001) == nil)
    }

    @Test func multiMessageGPADLAssembly() throws {
        let (s, relid) = connectedServer(memory: makeMemory())
        var server = s
        let pfns = (0..<100).map { UInt64(10 + $0 * 2) }
        let list = gpadlMessages(relid: relid, handle: 7, pfns: pfns)
        #expect(list.count == 4)  // 26 + 28 + 28 + 18
        var output = send(&server, Array(list.dropLast()))
        #expect(output.messages.isEmpty)
        output = send(&server, [list[list.count - 1]])
        #expect(messages(output) == [.gpadlCreated(relid: relid, handle: 7, status: 0)])
        #expect(server.gpadl(handle: 7)?.ranges.first?.pfns == pfns)
    }

    @Test func closeTeardownAndReopen() throws {
        let (s, relid) = connectedServer(memory: makeMemory())
        var server = s
        _ = send(&server, gpadlMessages(relid: relid, handle: 1, pfns: Array(20..<28)))
        let openRequest = VMBusMessage.openChannel(.init(relid: relid, openID: relid, ringGPADL: 1, targetVP: 0,
                                                         downstreamPageOffset: 4))
        _ = send(&server, [openRequest])
        let again = send(&server, [openRequest])
        #expect(messages(again) == [.openChannelResult(relid: relid, openID: relid, status: VMBusServer.failureStatus)])
        let close = send(&server, [.closeChannel(relid: relid)])
        #expect(close.messages.isEmpty)
        #expect(close.events == [.channelClosed(relid: relid, reason: .guestClosed)])
        let teardown = send(&server, [.gpadlTeardown(relid: relid, handle: 1)])
        #expect(messages(teardown) == [.gpadlTorndown(handle: 1)])
        #expect(teardown.events == [.gpadlRemoved(handle: 1)])
        _ = send(&server, gpadlMessages(relid: relid, handle: 2, pfns: Array(20..<28)))
        let reopen = send(&server, [.openChannel(.init(relid: relid, openID: relid, ringGPADL: 2, targetVP: 0,
                                                       downstreamPageOffset: 4))])
        #expect(messages(reopen) == [.openChannelResult(relid: relid, openID: relid, status: 0)])
    }

    @Test func badOpensAreAnsweredWithFailure() {
        let (s, relid) = connectedServer(memory: makeMemory())
        var server = s
        _ = send(&server, gpadlMessages(relid: relid, handle: 1, pfns: Array(20..<28)))
        let cases: [VMBusMessage.OpenChannel] = [
            .init(relid: 99, openID: 99, ringGPADL: 1, targetVP: 0, downstreamPageOffset: 4),  // unknown relid
            .init(relid: relid, openID: 1, ringGPADL: 5, targetVP: 0, downstreamPageOffset: 4),  // unknown GPADL
            .init(relid: relid, openID: 1, ringGPADL: 1, targetVP: 0, downstreamPageOffset: 1),  // split too low
            .init(relid: relid, openID: 1, ringGPADL: 1, targetVP: 0, downstreamPageOffset: 7),  // split too high
            .init(relid: relid, openID: 1, ringGPADL: 1, targetVP: 0, downstreamPageOffset: 0xFFFF_FFFF),
            .init(relid: relid, openID: 1, ringGPADL: 1, targetVP: 5, downstreamPageOffset: 4),  // missing VP
        ]
        for request in cases {
            let output = server.handle(.openChannel(request))
            #expect(messages(output) == [.openChannelResult(relid: request.relid, openID: request.openID,
                                                            status: VMBusServer.failureStatus)])
            #expect(output.diagnostics.first?.kind == .openRefused)
        }
    }

    @Test func unloadAndReconnectAfterKexec() throws {
        let (s, relid) = connectedServer(memory: makeMemory())
        var server = s
        _ = send(&server, gpadlMessages(relid: relid, handle: 1, pfns: Array(20..<28)))
        _ = send(&server, [.openChannel(.init(relid: relid, openID: relid, ringGPADL: 1, targetVP: 1,
                                              downstreamPageOffset: 4))])
        let unload = send(&server, [.unload])
        #expect(messages(unload) == [.unloadResponse])
        #expect(unload.events == [.channelClosed(relid: relid, reason: .unloaded), .gpadlRemoved(handle: 1), .reset, .unloaded])
        #expect(server.connection == nil)
        #expect(server.gpadl(handle: 1) == nil)
        // Messages other than INITIATE_CONTACT are ignored while disconnected.
        #expect(send(&server, [.requestOffers]).messages.isEmpty)

        // The kexec'd kernel connects again and gets the same offers.
        let hello = server.receive(contact(.win10V5_2).encode(), connectionID: 4)
        #expect(messages(hello) == [.versionResponse(.init(versionSupported: true, messageConnectionID: 1))])
        let offers = send(&server, [.requestOffers])
        #expect(offers.messages.count == 2)
        _ = send(&server, gpadlMessages(relid: relid, handle: 1, pfns: Array(20..<28)))
        let open = send(&server, [.openChannel(.init(relid: relid, openID: relid, ringGPADL: 1, targetVP: 0,
                                                     downstreamPageOffset: 4))])
        #expect(messages(open) == [.openChannelResult(relid: relid, openID: relid, status: 0)])
    }

    @Test func initiateContactWhileConnectedResets() {
        let (s, relid) = connectedServer(memory: makeMemory())
        var server = s
        _ = send(&server, gpadlMessages(relid: relid, handle: 1, pfns: Array(20..<28)))
        _ = send(&server, [.openChannel(.init(relid: relid, openID: relid, ringGPADL: 1, targetVP: 0,
                                              downstreamPageOffset: 4))])
        let output = server.receive(contact(.win10V5_3).encode(), connectionID: 4)
        #expect(output.events.prefix(3) == [.channelClosed(relid: relid, reason: .reconnected),
                                            .gpadlRemoved(handle: 1), .reset])
        #expect(messages(output) == [.versionResponse(.init(versionSupported: true, messageConnectionID: 1))])
    }

    @Test func rescindAndRelease() throws {
        let (s, relid) = connectedServer(memory: makeMemory())
        var server = s
        _ = send(&server, gpadlMessages(relid: relid, handle: 1, pfns: Array(20..<28)))
        _ = send(&server, [.openChannel(.init(relid: relid, openID: relid, ringGPADL: 1, targetVP: 0,
                                              downstreamPageOffset: 4))])
        let rescind = try server.rescindChannel(relid: relid)
        #expect(messages(rescind) == [.rescindChannelOffer(relid: relid)])
        #expect(rescind.events == [.channelClosed(relid: relid, reason: .rescinded)])
        // The relid is not reused before RELID_RELEASED.
        let (second, hotplug) = try server.addChannel(VMBusChannelOffer(classID: VMBusDeviceClass.scsi,
                                                                        instanceID: Self.instance))
        #expect(second != relid)
        #expect(messages(hotplug).count == 1)
        #expect(messages(send(&server, [.gpadlTeardown(relid: relid, handle: 1)])) == [.gpadlTorndown(handle: 1)])
        let released = send(&server, [.relidReleased(relid: relid)])
        #expect(released.events == [.relidReleased(relid: relid)])
        #expect(!server.relids.contains(relid))
    }

    @Test func modifyChannelIsAnsweredAt53() {
        let (s, relid) = connectedServer(memory: makeMemory())
        var server = s
        _ = send(&server, gpadlMessages(relid: relid, handle: 1, pfns: Array(20..<28)))
        _ = send(&server, [.openChannel(.init(relid: relid, openID: relid, ringGPADL: 1, targetVP: 0,
                                              downstreamPageOffset: 4))])
        let ok = send(&server, [.modifyChannel(relid: relid, targetVP: 1)])
        #expect(messages(ok) == [.modifyChannelResponse(relid: relid, status: 0)])
        #expect(ok.events == [.channelRetargeted(relid: relid, targetVP: 1)])
        #expect(server.openChannel(relid: relid)?.targetVP == 1)
        let bad = send(&server, [.modifyChannel(relid: relid, targetVP: 9)])
        #expect(messages(bad) == [.modifyChannelResponse(relid: relid, status: VMBusServer.failureStatus)])
        let unknown = send(&server, [.modifyChannel(relid: 77, targetVP: 0)])
        #expect(messages(unknown) == [.modifyChannelResponse(relid: 77, status: VMBusServer.failureStatus)])
    }

    @Test func duplicateOfferIsAHostError() throws {
        var server = VMBusServer(configuration: .init(vpCount: 1), memory: makeMemory())
        _ = try server.addChannel(VMBusChannelOffer(classID: VMBusDeviceClass.scsi, instanceID: Self.instance))
        #expect(throws: VMBusServerError.duplicateOffer(classID: VMBusDeviceClass.scsi, instanceID: Self.instance)) {
            _ = try server.addChannel(VMBusChannelOffer(classID: VMBusDeviceClass.scsi, instanceID: Self.instance))
        }
    }

    @Test func hostMessagesFromTheGuestAreIgnored() {
        let (s, _) = connectedServer(memory: makeMemory())
        var server = s
        let output = send(&server, [.allOffersDelivered, .gpadlCreated(relid: 1, handle: 1, status: 0)])
        #expect(output.messages.isEmpty)
        #expect(output.diagnostics.count == 2)
    }
}
