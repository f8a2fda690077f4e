extension VMBusMessage {
    /// The wire form: 8-byte header (type, padding) then the body, at the type's full size.
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: type.minimumSize)
        w.u32(type.rawValue)
        w.u32(0)
        switch self {
        case let .offerChannel(o):
            w.append(o.classID.wireBytes)
            w.append(o.instanceID.wireBytes)
            w.u64(0)
            w.u64(0)
            w.u16(o.flags)
            w.u16(o.mmioMegabytes)
            w.append(OfferChannel.normalized(o.userDefined))
            w.u16(o.subchannelIndex)
            w.u16(0)
            w.u32(o.relid)
            w.u8(o.monitorID)
            w.u8(o.monitorAllocated ? 1 : 0)
            w.u16(o.dedicatedInterrupt ? 1 : 0)
            w.u32(o.connectionID)
        case let .rescindChannelOffer(relid), let .closeChannel(relid), let .relidReleased(relid):
            w.u32(relid)
        case .requestOffers, .allOffersDelivered, .unload, .unloadResponse:
            break
        case let .openChannel(o):
            w.u32(o.relid)
            w.u32(o.openID)
            w.u32(o.ringGPADL)
            w.u32(o.targetVP)
            w.u32(o.downstreamPageOffset)
            w.append(OfferChannel.normalized(o.userData))
        case let .openChannelResult(relid, openID, status):
            w.u32(relid)
            w.u32(openID)
            w.u32(status)
        case let .gpadlHeader(h):
            w.u32(h.relid)
            w.u32(h.handle)
            w.u16(h.rangeBufferLength)
            w.u16(h.rangeCount)
            w.append(h.rangeBytes)
        case let .gpadlBody(b):
            w.u32(b.messageNumber)
            w.u32(b.handle)
            for pfn in b.pfns { w.u64(pfn) }
        case let .gpadlCreated(relid, handle, status):
            w.u32(relid)
            w.u32(handle)
            w.u32(status)
        case let .gpadlTeardown(relid, handle):
            w.u32(relid)
            w.u32(handle)
        case let .gpadlTorndown(handle):
            w.u32(handle)
        case let .initiateContact(c):
            w.u32(c.version.rawValue)
            w.u32(c.targetVP)
            w.u64(c.interruptPageOrSINT)
            w.u64(c.monitorPage1)
            w.u64(c.monitorPage2)
        case let .versionResponse(r):
            w.u8(r.versionSupported ? 1 : 0)
            w.u8(r.connectionState)
            w.u16(0)
            w.u32(r.messageConnectionID)
        case let .tlConnectRequest(endpointID, serviceID):
            w.append(endpointID.wireBytes)
            w.append(serviceID.wireBytes)
        case let .modifyChannel(relid, targetVP):
            w.u32(relid)
            w.u32(targetVP)
        case let .modifyChannelResponse(relid, status):
            w.u32(relid)
            w.u32(status)
        }
        w.pad(to: type.minimumSize)
        return w.bytes
    }

    /// Decodes one message with strict length checks: at least the type's minimum size, at most
    /// 240 bytes, and variable parts (PFN arrays) in whole units. Bytes after a fixed-size
    /// body are ignored (newer guests may append fields).
    public static func decode(_ bytes: [UInt8]) throws(VMBusMessageError) -> VMBusMessage {
        guard bytes.count <= VMBusMessageError.maximumSize else { throw .oversized(size: bytes.count) }
        let r = ByteReader(bytes)
        guard bytes.count >= 8 else { throw .truncated(type: r.u32(0), size: bytes.count, minimum: 8) }
        guard let type = VMBusMessageType(rawValue: r.u32(0)) else { throw .unknownType(r.u32(0)) }
        guard bytes.count >= type.minimumSize else {
            throw .truncated(type: type.rawValue, size: bytes.count, minimum: type.minimumSize)
        }
        func guid(_ offset: Int) -> VMBusGUID { VMBusGUID(wireBytes: r.slice(offset, 16)) ?? .zero }
        switch type {
        case .offerChannel:
            return .offerChannel(OfferChannel(
                classID: guid(8), instanceID: guid(24), flags: r.u16(56), mmioMegabytes: r.u16(58),
                userDefined: r.slice(60, 120), subchannelIndex: r.u16(180), relid: r.u32(184),
                monitorID: r.u8(188), monitorAllocated: r.u8(189) & 1 != 0,
                dedicatedInterrupt: r.u16(190) & 1 != 0, connectionID: r.u32(192)))
        case .rescindChannelOffer: return .rescindChannelOffer(relid: r.u32(8))
        case .requestOffers: return .requestOffers
        case .allOffersDelivered: return .allOffersDelivered
        case .openChannel:
            return .openChannel(OpenChannel(
                relid: r.u32(8), openID: r.u32(12), ringGPADL: r.u32(16), targetVP: r.u32(20),
                downstreamPageOffset: r.u32(24), userData: r.slice(28, 120)))
        case .openChannelResult: return .openChannelResult(relid: r.u32(8), openID: r.u32(12), status: r.u32(16))
        case .closeChannel: return .closeChannel(relid: r.u32(8))
        case .gpadlHeader:
            let rangeBytes = Array(bytes[20...])
            guard rangeBytes.count % 8 == 0 else {
                throw .malformed(type: type, reason: "range data of \(rangeBytes.count) bytes is not whole u64s")
            }
            return .gpadlHeader(GPADLHeader(relid: r.u32(8), handle: r.u32(12), rangeBufferLength: r.u16(16),
                                            rangeCount: r.u16(18), rangeBytes: rangeBytes))
        case .gpadlBody:
            let pfnBytes = bytes.count - 16
            guard pfnBytes % 8 == 0 else {
                throw .malformed(type: type, reason: "PFN array of \(pfnBytes) bytes is not whole u64s")
            }
            return .gpadlBody(GPADLBody(messageNumber: r.u32(8), handle: r.u32(12),
                                        pfns: (0..<pfnBytes / 8).map { r.u64(16 + 8 * $0) }))
        case .gpadlCreated: return .gpadlCreated(relid: r.u32(8), handle: r.u32(12), status: r.u32(16))
        case .gpadlTeardown: return .gpadlTeardown(relid: r.u32(8), handle: r.u32(12))
        case .gpadlTorndown: return .gpadlTorndown(handle: r.u32(8))
        case .relidReleased: return .relidReleased(relid: r.u32(8))
        case .initiateContact:
            return .initiateContact(InitiateContact(
                version: VMBusVersion(rawValue: r.u32(8)), targetVP: r.u32(12), interruptPageOrSINT: r.u64(16),
                monitorPage1: r.u64(24), monitorPage2: r.u64(32)))
        case .versionResponse:
            return .versionResponse(VersionResponse(versionSupported: r.u8(8) != 0, connectionState: r.u8(9),
                                                    messageConnectionID: r.u32(12)))
        case .unload: return .unload
        case .unloadResponse: return .unloadResponse
        case .tlConnectRequest: return .tlConnectRequest(endpointID: guid(8), serviceID: guid(24))
        case .modifyChannel: return .modifyChannel(relid: r.u32(8), targetVP: r.u32(12))
        case .modifyChannelResponse: return .modifyChannelResponse(relid: r.u32(8), status: r.u32(12))
        }
    }
}
