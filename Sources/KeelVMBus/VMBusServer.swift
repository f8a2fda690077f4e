import KeelSystem

/// The host side of the VMBus channel-management protocol as a pure state machine: feed it the
/// guest's posted messages, get back messages to deliver through the SynIC and events for the
/// VM. It never touches guest memory except to check GPADL pages with `GuestMemory.contains`.
/// Every guest request that Linux waits for is answered, with a failure status if invalid.
public struct VMBusServer: Sendable {
    /// Fixed parameters of the server.
    public struct Configuration: Sendable {
        /// Versions accepted in INITIATE_CONTACT; anything else is refused so the guest retries lower.
        public var supportedVersions: Set<VMBusVersion>
        /// Number of VPs; target VPs must be below it.
        public var vpCount: UInt32
        /// The connection id returned in VERSION_RESPONSE for the guest's later messages.
        public var messageConnectionID: UInt32
        public var gpadlLimits: GPADLLimits

        public init(supportedVersions: Set<VMBusVersion> = Set(VMBusVersion.linuxVersions), vpCount: UInt32,
                    messageConnectionID: UInt32 = 1, gpadlLimits: GPADLLimits = GPADLLimits()) {
            self.supportedVersions = supportedVersions
            self.vpCount = vpCount
            self.messageConnectionID = messageConnectionID
            self.gpadlLimits = gpadlLimits
        }
    }

    /// The negotiated connection.
    public struct Connection: Sendable, Equatable {
        public let version: VMBusVersion
        public let targetVP: UInt32
        public let sint: UInt8
        public let monitorPage1: UInt64
        public let monitorPage2: UInt64
        public internal(set) var offersRequested: Bool
    }

    struct Channel: Sendable {
        let relid: UInt32
        let offer: VMBusChannelOffer
        var offerSent = false
        var rescinded = false
        var open: VMBusChannelOpen?

        var signalConnectionID: UInt32 { VMBusServer.signalConnectionID(relid: relid) }

        var offerMessage: VMBusMessage {
            .offerChannel(.init(
                classID: offer.classID, instanceID: offer.instanceID, flags: offer.flags,
                mmioMegabytes: offer.mmioMegabytes, userDefined: offer.userDefined,
                subchannelIndex: offer.subchannelIndex, relid: relid, monitorID: 0xFF, monitorAllocated: false,
                dedicatedInterrupt: true, connectionID: signalConnectionID))
        }
    }

    /// Highest relid Linux accepts (it sizes its channel table to 2048).
    public static let maxRelid: UInt32 = 2047
    /// Connection ids on which the guest posts channel-management messages (1 before 5.0 and
    /// after connecting, 4 for INITIATE_CONTACT at ≥ 5.0).
    public static let contactConnectionIDs: Set<UInt32> = [1, 4]
    /// Status for every refused request (STATUS_UNSUCCESSFUL); Linux only tests for non-zero.
    public static let failureStatus: UInt32 = 0xC000_0001
    /// SINT used for messages before a connection exists (and below 5.0).
    public static let defaultSINT: UInt8 = 2

    /// The HvSignalEvent connection id of a channel: relid | SINT 2 << 12.
    public static func signalConnectionID(relid: UInt32) -> UInt32 { relid | UInt32(defaultSINT) << 12 }

    public let configuration: Configuration
    private let memory: any GuestMemory
    public private(set) var connection: Connection?
    var channels: [UInt32: Channel] = [:]
    var gpadls: [UInt32: GPADL] = [:]
    var pendingGPADLs: [UInt32: PendingGPADL] = [:]
    var gpadlPages = 0

    public init(configuration: Configuration, memory: any GuestMemory) {
        self.configuration = configuration
        self.memory = memory
    }

    // MARK: - Queries

    /// Whether HvPostMessage to `connectionID` reaches this server (else INVALID_CONNECTION_ID).
    public func acceptsMessages(onConnectionID connectionID: UInt32) -> Bool {
        Self.contactConnectionIDs.contains(connectionID) || connectionID == configuration.messageConnectionID
    }

    /// The open channel a guest HvSignalEvent with this connection id is meant for.
    public func openChannel(forSignalConnectionID connectionID: UInt32) -> VMBusChannelOpen? {
        let relid = connectionID & 0xFFF
        guard connectionID == Self.signalConnectionID(relid: relid) else { return nil }
        return channels[relid]?.open
    }

    /// The open state of a channel, if it is open.
    public func openChannel(relid: UInt32) -> VMBusChannelOpen? { channels[relid]?.open }

    /// A completed GPADL by handle (for device buffers such as netvsc's).
    public func gpadl(handle: UInt32) -> GPADL? { gpadls[handle] }

    /// Relids of all registered channels (including rescinded ones not yet released).
    public var relids: [UInt32] { channels.keys.sorted() }

    // MARK: - Host-initiated changes

    /// Registers a channel; offers it at once if the guest already asked for offers.
    public mutating func addChannel(_ offer: VMBusChannelOffer) throws(VMBusServerError) -> (relid: UInt32, output: VMBusServerOutput) {
        if offer.subchannelIndex == 0, channels.values.contains(where: {
            !$0.rescinded && $0.offer.subchannelIndex == 0 && $0.offer.classID == offer.classID
                && $0.offer.instanceID == offer.instanceID
        }) {
            throw .duplicateOffer(classID: offer.classID, instanceID: offer.instanceID)
        }
        guard let relid = (1...Self.maxRelid).first(where: { channels[$0] == nil }) else { throw .noFreeRelid }
        var channel = Channel(relid: relid, offer: offer)
        var output = VMBusServerOutput()
        if let connection, connection.offersRequested {
            channel.offerSent = true
            post(channel.offerMessage, to: &output)
        }
        channels[relid] = channel
        return (relid, output)
    }

    /// Withdraws a channel (hot-unplug). The relid stays taken until the guest releases it.
    public mutating func rescindChannel(relid: UInt32) throws(VMBusServerError) -> VMBusServerOutput {
        guard var channel = channels[relid], !channel.rescinded else { throw .unknownChannel(relid: relid) }
        var output = VMBusServerOutput()
        guard channel.offerSent else {
            channels[relid] = nil
            return output
        }
        if channel.open != nil {
            channel.open = nil
            output.events.append(.channelClosed(relid: relid, reason: .rescinded))
        }
        channel.rescinded = true
        channels[relid] = channel
        post(.rescindChannelOffer(relid: relid), to: &output)
        return output
    }

    // MARK: - Guest messages

    /// Handles the payload of an HvPostMessage (message type 1) sent to `connectionID`.
    public mutating func receive(_ payload: [UInt8], connectionID: UInt32) -> VMBusServerOutput {
        guard acceptsMessages(onConnectionID: connectionID) else {
            var output = VMBusServerOutput()
            output.diagnose(.wrongConnectionID, "VMBus message on unknown connection id \(connectionID) ignored")
            return output
        }
        let message: VMBusMessage
        do {
            message = try VMBusMessage.decode(payload)
        } catch {
            var output = VMBusServerOutput()
            output.diagnose(.undecodableMessage, "VMBus message ignored: \(error)")
            return output
        }
        return handle(message)
    }

    /// Handles one decoded guest message.
    public mutating func handle(_ message: VMBusMessage) -> VMBusServerOutput {
        var output = VMBusServerOutput()
        if case let .initiateContact(contact) = message {
            initiateContact(contact, &output)
            return output
        }
        if case .unload = message {
            unload(&output)
            return output
        }
        guard message.type.isGuestToHost else {
            output.diagnose(.unexpectedMessage, "guest sent host message \(message.type); ignored")
            return output
        }
        guard connection != nil else {
            output.diagnose(.unexpectedMessage, "guest sent \(message.type) before INITIATE_CONTACT; ignored")
            return output
        }
        switch message {
        case .requestOffers: requestOffers(&output)
        case let .gpadlHeader(header): gpadlHeader(header, &output)
        case let .gpadlBody(body): gpadlBody(body, &output)
        case let .gpadlTeardown(relid, handle): gpadlTeardown(relid: relid, handle: handle, &output)
        case let .openChannel(request): openChannel(request, &output)
        case let .closeChannel(relid): closeChannel(relid: relid, &output)
        case let .modifyChannel(relid, targetVP): modifyChannel(relid: relid, targetVP: targetVP, &output)
        case let .relidReleased(relid): relidReleased(relid: relid, &output)
        case let .tlConnectRequest(endpointID, serviceID):
            output.events.append(.transportConnectRequest(endpointID: endpointID, serviceID: serviceID))
        default:
            output.diagnose(.unexpectedMessage, "VMBus message \(message.type) ignored")
        }
        return output
    }

    // MARK: - Handlers

    private func post(_ message: VMBusMessage, to output: inout VMBusServerOutput) {
        let targetVP = connection?.targetVP ?? 0
        let sint = connection?.sint ?? Self.defaultSINT
        output.messages.append(VMBusOutgoingMessage(targetVP: targetVP, sint: sint, message: message))
    }

    private mutating func initiateContact(_ contact: VMBusMessage.InitiateContact, _ output: inout VMBusServerOutput) {
        if connection != nil { reset(reason: .reconnected, &output) }
        let version = contact.version
        let targetVP = version.usesMessageTargetVP ? contact.targetVP : 0
        let sint = contact.messageSINT
        var refusal: String?
        if !configuration.supportedVersions.contains(version) {
            refusal = "VMBus version \(version) refused"
        } else if targetVP >= configuration.vpCount {
            refusal = "INITIATE_CONTACT target VP \(targetVP) does not exist"
        } else if sint >= 16 {
            refusal = "INITIATE_CONTACT message SINT \(sint) does not exist"
        }
        if let refusal {
            output.diagnose(.versionRefused, refusal)
            let highest = configuration.supportedVersions.max()?.rawValue ?? 0
            let vp = targetVP < configuration.vpCount ? targetVP : 0
            let replySINT = sint < 16 ? sint : Self.defaultSINT
            output.messages.append(VMBusOutgoingMessage(
                targetVP: vp, sint: replySINT,
                message: .versionResponse(.init(versionSupported: false, connectionState: 0, messageConnectionID: highest))))
            return
        }
        connection = Connection(version: version, targetVP: targetVP, sint: sint, monitorPage1: contact.monitorPage1,
                                monitorPage2: contact.monitorPage2, offersRequested: false)
        output.events.append(.connected(version: version, targetVP: targetVP, sint: sint))
        post(.versionResponse(.init(versionSupported: true, connectionState: 0,
                                    messageConnectionID: configuration.messageConnectionID)), to: &output)
    }

    private mutating func requestOffers(_ output: inout VMBusServerOutput) {
        guard var current = connection, !current.offersRequested else {
            output.diagnose(.unexpectedMessage, "repeated REQUESTOFFERS ignored")
            return
        }
        current.offersRequested = true
        connection = current
        let order = channels.values.filter { !$0.rescinded }
            .sorted { ($0.offer.subchannelIndex, $0.relid) < ($1.offer.subchannelIndex, $1.relid) }
        for channel in order {
            channels[channel.relid]?.offerSent = true
            post(channel.offerMessage, to: &output)
        }
        post(.allOffersDelivered, to: &output)
    }

    private mutating func unload(_ output: inout VMBusServerOutput) {
        let targetVP = connection?.targetVP ?? 0
        let sint = connection?.sint ?? Self.defaultSINT
        reset(reason: .unloaded, &output)
        output.events.append(.unloaded)
        output.messages.append(VMBusOutgoingMessage(targetVP: targetVP, sint: sint, message: .unloadResponse))
    }

    /// Drops every channel opening, GPADL and the connection; registered channels stay and are
    /// offered again after the next REQUESTOFFERS.
    private mutating func reset(reason: VMBusChannelCloseReason, _ output: inout VMBusServerOutput) {
        for relid in channels.keys.sorted() {
            guard var channel = channels[relid] else { continue }
            if channel.rescinded {
                channels[relid] = nil
                continue
            }
            if channel.open != nil { output.events.append(.channelClosed(relid: relid, reason: reason)) }
            channel.open = nil
            channel.offerSent = false
            channels[relid] = channel
        }
        for handle in gpadls.keys.sorted() { output.events.append(.gpadlRemoved(handle: handle)) }
        gpadls = [:]
        pendingGPADLs = [:]
        gpadlPages = 0
        connection = nil
        output.events.append(.reset)
    }

    private func refuseGPADL(relid: UInt32, handle: UInt32, _ error: GPADLError, _ output: inout VMBusServerOutput) {
        output.diagnose(.gpadlRefused, "GPADL 0x\(String(handle, radix: 16)) refused: \(error)")
        post(.gpadlCreated(relid: relid, handle: handle, status: Self.failureStatus), to: &output)
    }

    private mutating func gpadlHeader(_ header: VMBusMessage.GPADLHeader, _ output: inout VMBusServerOutput) {
        let limits = configuration.gpadlLimits
        let pending: PendingGPADL
        do throws(GPADLError) {
            guard let channel = channels[header.relid], channel.offerSent, !channel.rescinded else {
                throw .unknownChannel(relid: header.relid)
            }
            guard gpadls[header.handle] == nil, pendingGPADLs[header.handle] == nil else {
                throw .duplicateHandle(header.handle)
            }
            guard gpadls.count + pendingGPADLs.count < limits.maxGPADLs else { throw .tooManyGPADLs(limit: limits.maxGPADLs) }
            pending = try PendingGPADL(header: header, limits: limits, pagesInUse: gpadlPages + pendingPages)
            guard pending.isComplete || pendingGPADLs.count < limits.maxPendingGPADLs else {
                throw .tooManyPending(limit: limits.maxPendingGPADLs)
            }
        } catch {
            refuseGPADL(relid: header.relid, handle: header.handle, error, &output)
            return
        }
        if pending.isComplete {
            complete(pending, &output)
        } else {
            pendingGPADLs[pending.handle] = pending
        }
    }

    private var pendingPages: Int {
        pendingGPADLs.values.reduce(0) { $0 + ($1.expectedBytes - 8 * $1.rangeCount) / 8 }
    }

    private mutating func gpadlBody(_ body: VMBusMessage.GPADLBody, _ output: inout VMBusServerOutput) {
        guard var pending = pendingGPADLs.removeValue(forKey: body.handle) else {
            output.diagnose(.gpadlRefused, "GPADL_BODY for unknown handle 0x\(String(body.handle, radix: 16)) ignored")
            return
        }
        do throws(GPADLError) {
            try pending.append(body.pfns)
        } catch {
            refuseGPADL(relid: pending.relid, handle: pending.handle, error, &output)
            return
        }
        if pending.isComplete {
            complete(pending, &output)
        } else {
            pendingGPADLs[pending.handle] = pending
        }
    }

    private mutating func complete(_ pending: PendingGPADL, _ output: inout VMBusServerOutput) {
        let gpadl: GPADL
        do throws(GPADLError) {
            gpadl = try pending.finish(memory: memory)
        } catch {
            refuseGPADL(relid: pending.relid, handle: pending.handle, error, &output)
            return
        }
        gpadls[gpadl.handle] = gpadl
        gpadlPages += gpadl.pageCount
        output.events.append(.gpadlCreated(gpadl))
        post(.gpadlCreated(relid: gpadl.relid, handle: gpadl.handle, status: 0), to: &output)
    }

    private mutating func gpadlTeardown(relid: UInt32, handle: UInt32, _ output: inout VMBusServerOutput) {
        if let gpadl = gpadls[handle] {
            if gpadl.relid != relid {
                output.diagnose(.gpadlRefused, "GPADL 0x\(String(handle, radix: 16)) torn down via relid \(relid), created for \(gpadl.relid)")
            }
            for (channelRelid, channel) in channels where channel.open?.ringGPADL == handle {
                channels[channelRelid]?.open = nil
                output.events.append(.channelClosed(relid: channelRelid, reason: .ringGPADLTornDown))
            }
            gpadls[handle] = nil
            gpadlPages -= gpadl.pageCount
            output.events.append(.gpadlRemoved(handle: handle))
        } else if pendingGPADLs.removeValue(forKey: handle) == nil {
            // Answer anyway: the guest waits for TORNDOWN without a timeout.
            output.diagnose(.gpadlRefused, "teardown of unknown GPADL 0x\(String(handle, radix: 16))")
        }
        post(.gpadlTorndown(handle: handle), to: &output)
    }

    private mutating func openChannel(_ request: VMBusMessage.OpenChannel, _ output: inout VMBusServerOutput) {
        func refuse(_ reason: String) {
            output.diagnose(.openRefused, "OPENCHANNEL relid \(request.relid) refused: \(reason)")
            post(.openChannelResult(relid: request.relid, openID: request.openID, status: Self.failureStatus), to: &output)
        }
        guard let channel = channels[request.relid], channel.offerSent, !channel.rescinded else {
            return refuse("no such channel")
        }
        guard channel.open == nil else { return refuse("already open") }
        guard let gpadl = gpadls[request.ringGPADL] else {
            return refuse("ring GPADL 0x\(String(request.ringGPADL, radix: 16)) does not exist")
        }
        guard gpadl.relid == request.relid else { return refuse("ring GPADL belongs to relid \(gpadl.relid)") }
        guard !channels.values.contains(where: { $0.open?.ringGPADL == request.ringGPADL }) else {
            return refuse("ring GPADL is used by another channel")
        }
        guard let pages = gpadl.wholePageAddresses else { return refuse("ring GPADL is not one whole-page range") }
        let split = Int(request.downstreamPageOffset)
        guard split >= 2, split <= pages.count - 2 else {
            return refuse("downstream page offset \(split) does not leave two pages per ring in \(pages.count)")
        }
        guard request.targetVP < configuration.vpCount else { return refuse("target VP \(request.targetVP) does not exist") }
        let open = VMBusChannelOpen(
            relid: request.relid, openID: request.openID, classID: channel.offer.classID,
            instanceID: channel.offer.instanceID, signalConnectionID: channel.signalConnectionID,
            targetVP: request.targetVP, ringGPADL: request.ringGPADL, guestToHostRing: Array(pages[..<split]),
            hostToGuestRing: Array(pages[split...]), userData: request.userData)
        channels[request.relid]?.open = open
        output.events.append(.channelOpened(open))
        post(.openChannelResult(relid: request.relid, openID: request.openID, status: 0), to: &output)
    }

    private mutating func closeChannel(relid: UInt32, _ output: inout VMBusServerOutput) {
        guard channels[relid]?.open != nil else {
            output.diagnose(.unknownChannel, "CLOSECHANNEL for relid \(relid), which is not open; ignored")
            return
        }
        channels[relid]?.open = nil
        output.events.append(.channelClosed(relid: relid, reason: .guestClosed))
    }

    private mutating func modifyChannel(relid: UInt32, targetVP: UInt32, _ output: inout VMBusServerOutput) {
        guard let version = connection?.version, version.supportsModifyChannel else {
            output.diagnose(.unexpectedMessage, "MODIFYCHANNEL before protocol 4.1; ignored")
            return
        }
        var status: UInt32 = 0
        if channels[relid]?.open == nil {
            output.diagnose(.modifyRefused, "MODIFYCHANNEL for relid \(relid), which is not open")
            status = Self.failureStatus
        } else if targetVP >= configuration.vpCount {
            output.diagnose(.modifyRefused, "MODIFYCHANNEL relid \(relid) to missing VP \(targetVP)")
            status = Self.failureStatus
        } else {
            channels[relid]?.open?.targetVP = targetVP
            output.events.append(.channelRetargeted(relid: relid, targetVP: targetVP))
        }
        if version.requiresModifyChannelResponse {
            post(.modifyChannelResponse(relid: relid, status: status), to: &output)
        }
    }

    private mutating func relidReleased(relid: UInt32, _ output: inout VMBusServerOutput) {
        guard let channel = channels[relid], channel.rescinded else {
            output.diagnose(.unknownChannel, "RELID_RELEASED for relid \(relid), which was not rescinded; ignored")
            return
        }
        channels[relid] = nil
        for (handle, gpadl) in gpadls where gpadl.relid == relid {
            gpadls[handle] = nil
            gpadlPages -= gpadl.pageCount
            output.events.append(.gpadlRemoved(handle: handle))
        }
        for (handle, pending) in pendingGPADLs where pending.relid == relid { pendingGPADLs[handle] = nil }
        output.events.append(.relidReleased(relid: relid))
    }
}
