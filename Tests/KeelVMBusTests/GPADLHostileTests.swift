import Testing
@testable import KeelVMBus

@Suite struct GPADLHostileTests {
    func refused(_ output: VMBusServerOutput, relid: UInt32, handle: UInt32) -> Bool {
        messages(output) == [.gpadlCreated(relid: relid, handle: handle, status: VMBusServer.failureStatus)]
            && output.diagnostics.first?.kind == .gpadlRefused
    }

    @Test func pfnOutsideGuestRAM() {
        let (s, relid) = connectedServer(memory: makeMemory())
        var server = s
        for bad: UInt64 in [ramPages, ramPages + 1000, VMBusPage.maxPFN, UInt64.max] {
            let output = send(&server, gpadlMessages(relid: relid, handle: 3, pfns: [1, 2, bad]))
            #expect(refused(output, relid: relid, handle: 3))
            #expect(server.gpadl(handle: 3) == nil)
        }
        // The bad page in a body.
        let pfns = Array(UInt64(1)...40) + [ramPages]
        #expect(refused(send(&server, gpadlMessages(relid: relid, handle: 4, pfns: pfns)), relid: relid, handle: 4))
    }

    @Test func tooManyPages() {
        let (s, relid) = connectedServer(memory: makeMemory(), limits: GPADLLimits(maxPagesPerGPADL: 16))
        var server = s
        let output = send(&server, [gpadlMessages(relid: relid, handle: 5, pfns: Array(1...17))[0]])
        #expect(refused(output, relid: relid, handle: 5))
        // Bodies of the refused GPADL are ignored with a diagnostic, not answered.
        let body = send(&server, [.gpadlBody(.init(handle: 5, pfns: [1]))])
        #expect(body.messages.isEmpty)
        #expect(body.diagnostics.count == 1)
    }

    @Test func pendingAndTotalLimits() {
        let limits = GPADLLimits(maxPagesPerGPADL: 100, maxGPADLs: 10, maxPendingGPADLs: 2, maxTotalPages: 150)
        let (s, relid) = connectedServer(memory: makeMemory(), limits: limits)
        var server = s
        // Two headers whose bodies never come.
        for handle: UInt32 in [1, 2] {
            #expect(send(&server, [gpadlMessages(relid: relid, handle: handle, pfns: Array(1...40))[0]]).messages.isEmpty)
        }
        #expect(refused(send(&server, [gpadlMessages(relid: relid, handle: 3, pfns: Array(1...40))[0]]),
                        relid: relid, handle: 3))
        _ = send(&server, [.gpadlTeardown(relid: relid, handle: 2)])
        // 40 pending + 100 = 140 fits, another 20 does not.
        #expect(messages(send(&server, gpadlMessages(relid: relid, handle: 6, pfns: Array(1...100))))
            == [.gpadlCreated(relid: relid, handle: 6, status: 0)])
        #expect(refused(send(&server, gpadlMessages(relid: relid, handle: 7, pfns: Array(1...20))), relid: relid, handle: 7))
    }

    @Test func malformedRangesAndBodies() {
        let (s, relid) = connectedServer(memory: makeMemory())
        var server = s
        // No ranges.
        let none = VMBusMessage.gpadlHeader(.init(relid: relid, handle: 1, rangeBufferLength: 16, rangeCount: 0,
                                                  rangeBytes: [UInt8](repeating: 0, count: 16)))
        #expect(refused(send(&server, [none]), relid: relid, handle: 1))
        // Byte count claims three pages, the buffer holds one PFN.
        var w = [UInt8](repeating: 0, count: 16)
        w[1] = 0x30  // 0x3000 bytes
        w[8] = 1
        let lying = VMBusMessage.gpadlHeader(.init(relid: relid, handle: 2, rangeBufferLength: 16, rangeCount: 1,
                                                   rangeBytes: w))
        #expect(refused(send(&server, [lying]), relid: relid, handle: 2))
        // Byte offset beyond the first page.
        var off = w
        off[1] = 0x10
        off[5] = 0x20
        let offset = VMBusMessage.gpadlHeader(.init(relid: relid, handle: 3, rangeBufferLength: 16, rangeCount: 1,
                                                    rangeBytes: off))
        #expect(refused(send(&server, [offset]), relid: relid, handle: 3))
        // Header carries more than the range buffer length.
        let over = VMBusMessage.gpadlHeader(.init(relid: relid, handle: 4, rangeBufferLength: 16, rangeCount: 1,
                                                  rangeBytes: w + [UInt8](repeating: 0, count: 8)))
        #expect(refused(send(&server, [over]), relid: relid, handle: 4))
        // Bodies overflow the announced length.
        var list = gpadlMessages(relid: relid, handle: 5, pfns: Array(1...30))
        list.append(.gpadlBody(.init(handle: 5, pfns: [1, 2, 3, 4, 5])))
        let overflow = send(&server, [list[0], list[2]])  // 26 + 5 PFNs of 30
        #expect(refused(overflow, relid: relid, handle: 5))
        // Unknown channel and duplicate handle.
        #expect(refused(send(&server, gpadlMessages(relid: 99, handle: 6, pfns: [1])), relid: 99, handle: 6))
        _ = send(&server, gpadlMessages(relid: relid, handle: 7, pfns: [1]))
        #expect(refused(send(&server, gpadlMessages(relid: relid, handle: 7, pfns: [2])), relid: relid, handle: 7))
        #expect(server.gpadl(handle: 7)?.ranges.first?.pfns == [1])
    }

    @Test func teardownOfUnknownHandleIsStillAnswered() {
        let (s, relid) = connectedServer(memory: makeMemory())
        var server = s
        let output = send(&server, [.gpadlTeardown(relid: relid, handle: 0xDEAD)])
        #expect(messages(output) == [.gpadlTorndown(handle: 0xDEAD)])
        #expect(output.diagnostics.count == 1)
    }

    @Test func tearingDownAnOpenRingClosesTheChannel() {
        let (s, relid) = connectedServer(memory: makeMemory())
        var server = s
        _ = send(&server, gpadlMessages(relid: relid, handle: 1, pfns: Array(20..<28)))
        _ = send(&server, [.openChannel(.init(relid: relid, openID: relid, ringGPADL: 1, targetVP: 0,
                                              downstreamPageOffset: 4))])
        let output = send(&server, [.gpadlTeardown(relid: relid, handle: 1)])
        #expect(output.events == [.channelClosed(relid: relid, reason: .ringGPADLTornDown), .gpadlRemoved(handle: 1)])
        #expect(messages(output) == [.gpadlTorndown(handle: 1)])
    }
}
