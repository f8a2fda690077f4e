import KeelSystem
@testable import KeelVMBus

/// Guest RAM for the tests: 1 MiB at GPA 0.
func makeMemory() -> BufferGuestMemory { BufferGuestMemory(base: 0, size: 1 << 20) }

let ramPages: UInt64 = (1 << 20) / 4096

/// The INITIATE_CONTACT Linux sends for `version` (target VP 0, SINT 2 for >= 5.0).
func contact(_ version: VMBusVersion, targetVP: UInt32 = 0) -> VMBusMessage {
    .initiateContact(.init(version: version, targetVP: targetVP,
                           interruptPageOrSINT: version.hasMessageSINT ? 2 : 0x3000,
                           monitorPage1: 0x4000, monitorPage2: 0x5000))
}

/// The messages of an output, without addressing.
func messages(_ output: VMBusServerOutput) -> [VMBusMessage] { output.messages.map(\.message) }

/// A guest's GPADL creation split the way Linux splits it: 26 PFNs in the header, 28 per body.
func gpadlMessages(relid: UInt32, handle: UInt32, pfns: [UInt64]) -> [VMBusMessage] {
    var result: [VMBusMessage] = [
        .gpadlHeader(.init(relid: relid, handle: handle, totalPages: pfns.count, pfns: Array(pfns.prefix(26)))),
    ]
    var rest = Array(pfns.dropFirst(26))
    while !rest.isEmpty {
        result.append(.gpadlBody(.init(handle: handle, pfns: Array(rest.prefix(28)))))
        rest = Array(rest.dropFirst(28))
    }
    return result
}

/// Sends every message as bytes on connection 1 and concatenates the outputs.
func send(_ server: inout VMBusServer, _ list: [VMBusMessage], connectionID: UInt32 = 1) -> VMBusServerOutput {
    var total = VMBusServerOutput()
    for message in list {
        let output = server.receive(message.encode(), connectionID: connectionID)
        total.messages += output.messages
        total.events += output.events
    }
    return total
}

/// A connected server (5.3) with a heartbeat channel registered and offered.
func connectedServer(memory: BufferGuestMemory, vpCount: UInt32 = 2, limits: GPADLLimits = GPADLLimits())
    -> (VMBusServer, UInt32)
{
    var server = VMBusServer(configuration: .init(vpCount: vpCount, gpadlLimits: limits), memory: memory)
    let relid = (try? server.addChannel(.integrationComponent(classID: VMBusDeviceClass.heartbeat,
                                                               instanceID: VMBusGUID("11111111-2222-3333-4444-555555555555") ?? .zero)))?.relid ?? 0
    _ = server.receive(contact(.win10V5_3).encode(), connectionID: 4)
    _ = server.receive(VMBusMessage.requestOffers.encode(), connectionID: 1)
    return (server, relid)
}

extension Array where Element == UInt8 {
    var hex: String {
        map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }
}
