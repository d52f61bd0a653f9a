"""Endpoint handlers of the fake: typed parameter parsing, validation and Bybit response shapes.

Each handler gets the exchange (lock held), the authenticated account (None on public
endpoints) and the request parameters (query dict for GET, decoded JSON object for POST), and
returns the ``result`` object. Errors are raised as ``ApiError``. All numbers go out as strings.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from .candles import DAY_MS, INTERVALS, MINUTE_MS, fmt
from .engine import (
    MASTER_PERMISSIONS,
    OPEN_STATUSES,
    SUB_PERMISSIONS,
    ZERO,
    Account,
    ApiError,
    Exchange,
    Execution,
    Instrument,
    Order,
    Position,
    Transfer,
    decode_cursor,
    encode_cursor,
    paginate,
    time_window,
)

Params = dict[str, object]
Handler = Callable[[Exchange, Account | None, Params], dict]

_LINK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_INT_RE = re.compile(r"^-?\d+$")
TRADING_CATEGORIES = ("linear", "spot")


# ---------------------------------------------------------------------- parameter helpers
def p_str(
    p: Params, name: str, *, required: bool = False, choices: tuple[str, ...] = ()
) -> str | None:
    value = p.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(10001, f"params error: {name} is required")
        return None
    if not isinstance(value, str):
        raise ApiError(10001, f"params error: {name} must be a string")
    if choices and value not in choices:
        raise ApiError(10001, f"params error: {name} invalid: {value}")
    return value


def p_dec(
    p: Params, name: str, *, required: bool = False, allow_zero: bool = False
) -> Decimal | None:
    raw = p_str(p, name, required=required)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ApiError(10001, f"params error: {name} invalid: {raw}") from None
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero):
        raise ApiError(10001, f"params error: {name} invalid: {raw}")
    return value


def p_int(
    p: Params,
    name: str,
    *,
    default: int | None = None,
    lo: int | None = None,
    hi: int | None = None,
    required: bool = False,
) -> int | None:
    value = p.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(10001, f"params error: {name} is required")
        return default
    if isinstance(value, bool):
        raise ApiError(10001, f"params error: {name} must be an integer")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and _INT_RE.match(value):
        n = int(value)
    else:
        raise ApiError(10001, f"params error: {name} must be an integer")
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise ApiError(10001, f"params error: {name} out of range [{lo}, {hi}]: {n}")
    return n


def p_json_int(p: Params, name: str) -> int:
    """A POST body integer that must be a JSON number (Bybit's typed fields)."""
    value = p.get(name)
    if value is None:
        raise ApiError(10001, f"params error: {name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(10001, f"params error: {name} must be an integer")
    return value


def p_bool(p: Params, name: str) -> bool:
    value = p.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(10001, f"params error: {name} must be a boolean")
    return value


def p_category(p: Params, allowed: tuple[str, ...] = TRADING_CATEGORIES) -> str:
    category = p_str(p, "category", required=True)
    assert category is not None
    if category not in allowed:
        raise ApiError(10001, f"params error: category {category} not supported here")
    return category


def _account(acct: Account | None) -> Account:
    assert acct is not None
    return acct


# ---------------------------------------------------------------------- response shapes
def order_dict(ex: Exchange, o: Order) -> dict:
    linear = o.category == "linear"
    triggered_dir = 0
    if o.stop_order_type:
        long_position = o.side == "Sell"
        rise = (o.stop_order_type == "TakeProfit") == long_position
        triggered_dir = 1 if rise else 2
    avg = o.avg_price
    d = {
        "orderId": o.order_id,
        "orderLinkId": o.order_link_id,
        "blockTradeId": "",
        "symbol": o.symbol,
        "price": fmt(o.price),
        "qty": fmt(o.qty),
        "side": o.side,
        "isLeverage": "" if linear else "0",
        "positionIdx": 0,
        "orderStatus": o.status,
        "cancelType": o.cancel_type,
        "rejectReason": o.reject_reason,
        "avgPrice": fmt(avg) if avg is not None else "",
        "leavesQty": fmt(o.leaves_qty),
        "leavesValue": fmt(o.leaves_qty * o.price),
        "cumExecQty": fmt(o.cum_exec_qty),
        "cumExecValue": fmt(o.cum_exec_value),
        "cumExecFee": fmt(o.cum_exec_fee),
        "timeInForce": o.time_in_force,
        "orderType": o.order_type,
        "stopOrderType": o.stop_order_type,
        "orderIv": "",
        "marketUnit": o.market_unit,
        "triggerPrice": fmt(o.trigger_price or ZERO),
        "takeProfit": fmt(o.take_profit or ZERO),
        "stopLoss": fmt(o.stop_loss or ZERO),
        "tpslMode": (
            "Full" if linear and (o.take_profit or o.stop_loss or o.stop_order_type) else ""
        ),
        "ocoTriggerBy": "",
        "tpLimitPrice": "0",
        "slLimitPrice": "0",
        "tpTriggerBy": "LastPrice" if o.take_profit else "",
        "slTriggerBy": "LastPrice" if o.stop_loss else "",
        "triggerDirection": triggered_dir,
        "triggerBy": "LastPrice" if o.trigger_price else "",
        "lastPriceOnCreated": fmt(o.last_price_on_created),
        "reduceOnly": o.reduce_only,
        "closeOnTrigger": o.close_on_trigger,
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": str(o.created_time),
        "updatedTime": str(o.updated_time),
    }
    if linear:
        d["createType"] = o.create_type
    return d


def execution_dict(e: Execution) -> dict:
    d = {
        "symbol": e.symbol,
        "orderType": e.order_type,
        "underlyingPrice": "",
        "orderLinkId": e.order_link_id,
        "side": e.side,
        "indexPrice": "",
        "orderId": e.order_id,
        "stopOrderType": e.stop_order_type or "UNKNOWN",
        "leavesQty": fmt(e.leaves_qty),
        "execTime": str(e.exec_time),
        "feeCurrency": e.fee_currency,
        "isMaker": e.is_maker,
        "execFee": fmt(e.exec_fee),
        "feeRate": fmt(e.fee_rate),
        "execId": e.exec_id,
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": fmt(e.mark_price),
        "execPrice": fmt(e.exec_price),
        "markIv": "",
        "orderQty": fmt(e.order_qty),
        "orderPrice": fmt(e.order_price),
        "execValue": fmt(e.exec_value),
        "execType": e.exec_type,
        "execQty": fmt(e.exec_qty),
        "closedSize": fmt(e.closed_size) if e.category == "linear" else "",
        "extraFees": "",
        "seq": e.seq,
    }
    if e.category == "linear":
        d["createType"] = e.create_type
    return d


def position_dict(ex: Exchange, acct: Account, pos: Position) -> dict:
    lev = ex.leverage(acct, pos.symbol)
    mark = ex.mark(pos.symbol, pos.avg_price)
    value = pos.size * pos.avg_price
    im = value / lev
    return {
        "positionIdx": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": pos.symbol,
        "side": pos.side,
        "size": fmt(pos.size),
        "avgPrice": fmt(pos.avg_price),
        "positionValue": fmt(value),
        "tradeMode": 0,
        "autoAddMargin": 0,
        "positionStatus": "Normal",
        "leverage": fmt(lev),
        "markPrice": fmt(mark) if mark else "",
        "liqPrice": "",
        "bustPrice": "",
        "positionIM": fmt(im.quantize(Decimal("1e-8"))),
        "positionMM": fmt((pos.size * mark * Decimal("0.005")).quantize(Decimal("1e-8"))),
        "positionBalance": fmt(im.quantize(Decimal("1e-8"))),
        "tpslMode": "Full",
        "takeProfit": fmt(pos.take_profit or ZERO),
        "stopLoss": fmt(pos.stop_loss or ZERO),
        "trailingStop": "0",
        "sessionAvgPrice": "",
        "unrealisedPnl": fmt(ex.unrealised(pos)),
        "curRealisedPnl": fmt(pos.cum_realised_pnl),
        "cumRealisedPnl": fmt(pos.cum_realised_pnl),
        "adlRankIndicator": 2 if pos.size else 0,
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "createdTime": str(pos.created_time),
        "updatedTime": str(pos.updated_time),
        "seq": pos.seq,
    }


def transfer_dict(t: Transfer) -> dict:
    return {
        "transferId": t.transfer_id,
        "coin": t.coin,
        "amount": fmt(t.amount),
        "fromMemberId": str(t.from_member_id),
        "toMemberId": str(t.to_member_id),
        "fromAccountType": t.from_account_type,
        "toAccountType": t.to_account_type,
        "timestamp": str(t.timestamp),
        "status": t.status,
    }


def linear_instrument_dict(i: Instrument) -> dict:
    return {
        "symbol": i.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": i.base_coin,
        "quoteCoin": i.quote_coin,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(max(0, -int(i.tick_size.as_tuple().exponent))),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": fmt(i.max_leverage),
            "leverageStep": fmt(i.leverage_step),
        },
        "priceFilter": {
            "minPrice": fmt(i.min_price),
            "maxPrice": fmt(i.max_price),
            "tickSize": fmt(i.tick_size),
        },
        "lotSizeFilter": {
            "maxOrderQty": fmt(i.max_order_qty),
            "minOrderQty": fmt(i.min_order_qty),
            "qtyStep": fmt(i.qty_step),
            "postOnlyMaxOrderQty": fmt(i.max_order_qty),
            "maxMktOrderQty": fmt(i.max_mkt_order_qty),
            "minNotionalValue": fmt(i.min_notional_value),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": i.quote_coin,
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "symbolType": "",
    }


def spot_instrument_dict(i: Instrument) -> dict:
    return {
        "symbol": i.symbol,
        "baseCoin": i.base_coin,
        "quoteCoin": i.quote_coin,
        "innovation": "0",
        "status": "Trading",
        "marginTrading": "utaOnly",
        "stTag": "0",
        "lotSizeFilter": {
            "basePrecision": fmt(i.base_precision),
            "quotePrecision": fmt(i.quote_precision),
            "minOrderQty": fmt(i.min_order_qty),
            "maxOrderQty": fmt(i.max_order_qty),
            "minOrderAmt": fmt(i.min_order_amt),
            "maxOrderAmt": fmt(i.max_order_amt),
            "maxLimitOrderQty": fmt(i.max_limit_order_qty),
            "maxMarketOrderQty": fmt(i.max_market_order_qty),
        },
        "priceFilter": {"tickSize": fmt(i.tick_size)},
        "riskParameters": {"priceLimitRatioX": "0.005", "priceLimitRatioY": "0.01"},
        "symbolType": "",
    }


# ---------------------------------------------------------------------- market (public)
def market_time(ex: Exchange, acct: Account | None, p: Params) -> dict:
    raise AssertionError("served by the server itself (it owns the wall clock)")


def instruments_info(ex: Exchange, acct: Account | None, p: Params) -> dict:
    category = p_category(p)
    symbol = p_str(p, "symbol")
    base = p_str(p, "baseCoin")
    items = [
        i
        for (cat, sym), i in sorted(ex.instruments.items())
        if cat == category
        and (symbol is None or sym == symbol)
        and (base is None or category == "spot" or i.base_coin == base)
    ]
    if category == "spot":
        return {"category": "spot", "list": [spot_instrument_dict(i) for i in items]}
    limit = p_int(p, "limit", default=500, lo=1, hi=1000)
    assert limit is not None
    start = 0
    cursor = p_str(p, "cursor")
    if cursor:
        start = decode_cursor(cursor)
    page = items[start : start + limit]
    nxt = encode_cursor(start + limit) if start + limit < len(items) else ""
    return {
        "category": category,
        "list": [linear_instrument_dict(i) for i in page],
        "nextPageCursor": nxt,
    }


def _ticker(ex: Exchange, inst: Instrument) -> dict:
    now = ex.now()
    path = ex.paths[inst.symbol]
    last = ex.last_price(inst.symbol)
    bid, ask = ex.bid_ask(inst)
    hi_idx = path.index_at(now)
    lo_idx = max(path.index_at(now - DAY_MS), 0)
    window = path.rows[lo_idx : hi_idx + 1]
    prev24 = window[0].open
    hour_idx = max(path.index_at(now - 60 * MINUTE_MS), 0)
    pcnt = (last / prev24 - 1).quantize(Decimal("0.000001")) if prev24 else ZERO
    common = {
        "symbol": inst.symbol,
        "lastPrice": fmt(last),
        "prevPrice24h": fmt(prev24),
        "price24hPcnt": fmt(pcnt),
        "highPrice24h": fmt(max(k.high for k in window)),
        "lowPrice24h": fmt(min(k.low for k in window)),
        "turnover24h": fmt(sum((k.turnover for k in window), ZERO)),
        "volume24h": fmt(sum((k.volume for k in window), ZERO)),
        "bid1Price": fmt(bid),
        "bid1Size": "1",
        "ask1Price": fmt(ask),
        "ask1Size": "1",
    }
    if inst.category == "spot":
        return {**common, "usdIndexPrice": fmt(last)}
    funding_period = 8 * 60 * MINUTE_MS
    return {
        **common,
        "indexPrice": fmt(last),
        "markPrice": fmt(last),
        "prevPrice1h": fmt(path.rows[hour_idx].open),
        "openInterest": "0",
        "openInterestValue": "0",
        "fundingRate": "0.0001",
        "nextFundingTime": str((now // funding_period + 1) * funding_period),
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
    }


def tickers(ex: Exchange, acct: Account | None, p: Params) -> dict:
    category = p_category(p)
    symbol = p_str(p, "symbol")
    if symbol is not None:
        inst = ex.instrument(category, symbol)
        ex.last_price(symbol)  # raises when the fake has no price for it
        return {"category": category, "list": [_ticker(ex, inst)]}
    items = [
        _ticker(ex, i)
        for (cat, sym), i in sorted(ex.instruments.items())
        if cat == category and ex.has_price(sym)
    ]
    return {"category": category, "list": items}


def kline(ex: Exchange, acct: Account | None, p: Params) -> dict:
    category = p_str(p, "category") or "linear"  # Bybit defaults category to linear here
    if category not in TRADING_CATEGORIES:
        raise ApiError(10001, f"params error: category {category} not supported here")
    symbol = p_str(p, "symbol", required=True)
    assert symbol is not None
    interval = p_str(p, "interval", required=True)
    if interval not in INTERVALS:
        raise ApiError(10001, f"params error: Invalid period! interval={interval}")
    start = p_int(p, "start", lo=0)
    end = p_int(p, "end", lo=0)
    limit = p_int(p, "limit", default=200, lo=1, hi=1000)
    assert limit is not None
    ex.instrument(category, symbol)
    path = ex.paths.get(symbol)
    rows = path.klines(interval, ex.now(), start, end, limit) if path else []
    return {"symbol": symbol, "category": category, "list": rows}


# ---------------------------------------------------------------------- account / asset
def wallet_balance(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    account_type = p_str(p, "accountType", required=True)
    if account_type != "UNIFIED":
        raise ApiError(10001, "accountType only support UNIFIED")
    coins_param = p_str(p, "coin")
    wanted = coins_param.split(",") if coins_param else None
    upl = ex.total_upl(a)
    pos_im = ex.position_im(a)
    ord_im = ex.order_im(a)
    mm = ex.position_mm(a)
    wallet_usd = ex.wallet_usd(a)
    margin = wallet_usd + upl
    total_im = pos_im + ord_im
    q = Decimal("1e-8")
    coins = []
    names = wanted if wanted is not None else sorted(c for c, v in a.unified.items() if v != 0)
    for coin in names:
        bal = a.unified.get(coin, ZERO)
        is_usdt = coin == "USDT"
        coin_upl = upl if is_usdt else ZERO
        equity = bal + coin_upl
        cum = sum((pos.cum_realised_pnl for pos in a.positions.values()), ZERO) if is_usdt else ZERO
        coins.append(
            {
                "coin": coin,
                "equity": fmt(equity),
                "usdValue": fmt((equity * ex.coin_usd(coin)).quantize(q)),
                "walletBalance": fmt(bal),
                "locked": fmt(ex.spot_locked(a, coin)),
                "spotHedgingQty": "0",
                "borrowAmount": "0",
                "availableToBorrow": "",
                "availableToWithdraw": "",
                "accruedInterest": "0",
                "totalOrderIM": fmt(ord_im.quantize(q)) if is_usdt else "0",
                "totalPositionIM": fmt(pos_im.quantize(q)) if is_usdt else "0",
                "totalPositionMM": fmt(mm.quantize(q)) if is_usdt else "0",
                "unrealisedPnl": fmt(coin_upl),
                "cumRealisedPnl": fmt(cum),
                "bonus": "0",
                "marginCollateral": True,
                "collateralSwitch": True,
            }
        )
    account = {
        "accountType": "UNIFIED",
        "accountIMRate": (
            fmt((total_im / margin).quantize(Decimal("0.0001"))) if margin > 0 else "0"
        ),
        "accountMMRate": fmt((mm / margin).quantize(Decimal("0.0001"))) if margin > 0 else "0",
        "accountLTV": "0",
        "totalEquity": fmt(margin.quantize(q)),
        "totalWalletBalance": fmt(wallet_usd.quantize(q)),
        "totalMarginBalance": fmt(margin.quantize(q)),
        "totalAvailableBalance": fmt(ex.available_usd(a).quantize(q)),
        "totalPerpUPL": fmt(upl.quantize(q)),
        "totalInitialMargin": fmt(total_im.quantize(q)),
        "totalMaintenanceMargin": fmt(mm.quantize(q)),
        "coin": coins,
    }
    return {"list": [account]}


def coins_balance(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    account_type = p_str(p, "accountType", required=True, choices=("FUND", "UNIFIED"))
    member = p_int(p, "memberId", lo=1)
    target = a
    if member is not None and member != a.uid:
        other = ex.account_by_uid(member)
        if other is None:
            raise ApiError(10001, "params error: memberId does not exist")
        if not a.master:
            raise ApiError(10005, "Permission denied, please check your API key permissions.")
        target = other
    coins_param = p_str(p, "coin")
    if account_type == "UNIFIED" and not coins_param:
        raise ApiError(10001, "params error: coin is required for accountType UNIFIED")
    wallet = target.fund if account_type == "FUND" else target.unified
    names = (
        coins_param.split(",") if coins_param else sorted(c for c, v in wallet.items() if v != 0)
    )
    balance = []
    for coin in names:
        bal = wallet.get(coin, ZERO)
        transferable = bal if account_type == "FUND" else ex.spot_free(target, coin)
        balance.append(
            {
                "coin": coin,
                "walletBalance": fmt(bal),
                "transferBalance": fmt(transferable),
                "bonus": "",
                "transferSafeAmount": "",
                "ltvTransferSafeAmount": "",
            }
        )
    return {"accountType": account_type, "memberId": str(target.uid), "balance": balance}


def universal_transfer(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    transfer_id = p_str(p, "transferId", required=True)
    assert transfer_id is not None
    try:
        uuid.UUID(transfer_id)
    except ValueError:
        raise ApiError(10001, "params error: transferId must be a UUID") from None
    coin = p_str(p, "coin", required=True)
    assert coin is not None
    if coin != coin.upper():
        raise ApiError(10001, "params error: coin must be uppercase")
    amount = p_dec(p, "amount", required=True)
    assert amount is not None
    from_uid = p_json_int(p, "fromMemberId")
    to_uid = p_json_int(p, "toMemberId")
    types = ("UNIFIED", "FUND")
    from_type = p_str(p, "fromAccountType", required=True, choices=types)
    to_type = p_str(p, "toAccountType", required=True, choices=types)
    assert from_type is not None
    assert to_type is not None
    record = ex.transfer(
        a,
        transfer_id=transfer_id,
        coin=coin,
        amount=amount,
        from_member_id=from_uid,
        to_member_id=to_uid,
        from_account_type=from_type,
        to_account_type=to_type,
    )
    return {"transferId": record.transfer_id, "status": record.status}


def transfer_list(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    transfer_id = p_str(p, "transferId")
    coin = p_str(p, "coin")
    status = p_str(p, "status", choices=("SUCCESS", "FAILED", "PENDING"))
    limit = p_int(p, "limit", default=20, lo=1, hi=50)
    assert limit is not None
    lo, hi = time_window(p_int(p, "startTime", lo=0), p_int(p, "endTime", lo=0), ex.now())
    items = [
        t
        for t in reversed(ex.transfers)
        if (a.master or a.uid in (t.from_member_id, t.to_member_id))
        and (transfer_id is None or t.transfer_id == transfer_id)
        and (coin is None or t.coin == coin)
        and (status is None or t.status == status)
        and (transfer_id is not None or lo <= t.timestamp <= hi)
    ]
    page, nxt = paginate(items, limit, p_str(p, "cursor"))
    return {"list": [transfer_dict(t) for t in page], "nextPageCursor": nxt}


def sub_members(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    if not a.master:
        raise ApiError(10005, "Permission denied, please check your API key permissions.")
    subs = sorted((x for x in ex.accounts.values() if not x.master), key=lambda x: x.uid)
    return {
        "subMembers": [
            {
                "uid": str(x.uid),
                "username": x.username or x.name,
                "memberType": 1,
                "status": 1,
                "accountMode": 3,
                "remark": "",
            }
            for x in subs
        ]
    }


def _day(ms: int) -> str:
    """Bybit's timestamp format in query-api: ``2024-03-01T09:30:00Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def query_api(ex: Exchange, acct: Account | None, p: Params) -> dict:
    """``GET /v5/user/query-api``: the calling key's own settings (any permission may ask)."""
    a = _account(acct)
    k = a.key
    default = MASTER_PERMISSIONS if a.master else SUB_PERMISSIONS
    permissions = {name: list(v) for name, v in (k.permissions or default).items()}
    for name in ("FiatP2P", "FiatBybitPay", "FiatConvertBroker", "BlockTrade", "Affiliate"):
        permissions.setdefault(name, [])
    master = next((x for x in ex.accounts.values() if x.master), None)
    deadline = ""
    expired_at = ""
    if k.expires_at_ms is not None:
        expired_at = _day(k.expires_at_ms)
        deadline = str(max(0, (k.expires_at_ms - int(time.time() * 1000)) // DAY_MS))
    return {
        "id": str(abs(hash(a.api_key)) % 10**8),
        "note": k.note,
        "apiKey": a.api_key,
        "readOnly": 1 if k.read_only else 0,
        "secret": "",
        "permissions": permissions,
        "ips": list(k.ips),
        "type": 1,
        "deadlineDay": int(deadline) if deadline else 0,
        "expiredAt": expired_at,
        "createdAt": _day(k.created_at_ms),
        "unified": 0,
        "uta": 1,
        "userID": a.uid,
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": a.master,
        "parentUid": "0" if a.master or master is None else str(master.uid),
        "kycLevel": "LEVEL_DEFAULT",
        "kycRegion": "",
    }


# ---------------------------------------------------------------------- trading
def create_order(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    category = p_category(p)
    symbol = p_str(p, "symbol", required=True)
    assert symbol is not None
    inst = ex.instrument(category, symbol)
    side = p_str(p, "side", required=True, choices=("Buy", "Sell"))
    order_type = p_str(p, "orderType", required=True, choices=("Market", "Limit"))
    assert side is not None
    assert order_type is not None
    qty = p_dec(p, "qty", required=True)
    assert qty is not None
    price = p_dec(p, "price") if order_type == "Limit" else None
    if order_type == "Limit" and price is None:
        raise ApiError(10001, "params error: price is required for a Limit order")
    tif = p_str(p, "timeInForce", choices=("GTC", "IOC", "FOK", "PostOnly")) or "GTC"
    link = p_str(p, "orderLinkId") or ""
    if link and not _LINK_ID_RE.match(link):
        raise ApiError(10001, "params error: orderLinkId invalid (max 36 of [A-Za-z0-9_-])")
    if p_int(p, "positionIdx", default=0) != 0:
        raise ApiError(10001, "position idx not match position mode")
    if p.get("triggerPrice") not in (None, ""):
        raise ApiError(10001, "fake: conditional orders (triggerPrice) are not modelled")
    if p_int(p, "isLeverage", default=0) != 0:
        raise ApiError(10001, "fake: spot margin trading is not modelled")
    if p_str(p, "orderFilter") not in (None, "Order"):
        raise ApiError(10001, "fake: only orderFilter=Order is modelled")
    if p_str(p, "tpslMode") not in (None, "Full"):
        raise ApiError(10001, "fake: only tpslMode=Full is modelled")
    for name in ("tpOrderType", "slOrderType"):
        if p_str(p, name) not in (None, "Market"):
            raise ApiError(10001, f"fake: only {name}=Market is modelled")
    for name in ("tpTriggerBy", "slTriggerBy"):
        if p_str(p, name) not in (None, "LastPrice"):
            raise ApiError(10001, f"fake: only {name}=LastPrice is modelled")
    market_unit = p_str(p, "marketUnit", choices=("baseCoin", "quoteCoin"))
    take_profit = p_dec(p, "takeProfit")
    stop_loss = p_dec(p, "stopLoss")
    linear = category == "linear"
    order = ex.place_order(
        a,
        inst,
        side=side,
        order_type=order_type,
        qty=qty,
        price=price,
        time_in_force=tif,
        order_link_id=link,
        reduce_only=p_bool(p, "reduceOnly") if linear else False,
        close_on_trigger=p_bool(p, "closeOnTrigger") if linear else False,
        take_profit=take_profit,
        stop_loss=stop_loss,
        market_unit=market_unit if order_type == "Market" and not linear else None,
    )
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


def cancel_order(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    category = p_category(p)
    symbol = p_str(p, "symbol", required=True)
    assert symbol is not None
    ex.instrument(category, symbol)
    order_id = p_str(p, "orderId")
    link = p_str(p, "orderLinkId")
    if not order_id and not link:
        raise ApiError(10001, "params error: orderId or orderLinkId is required")
    order = ex.cancel_order(a, category, symbol, order_id, link)
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


def _order_filters(ex: Exchange, a: Account, category: str, p: Params) -> tuple[list[Order], bool]:
    """Orders of the account in the category, narrowed by orderId > orderLinkId > symbol >
    baseCoin/settleCoin (Bybit's priority). Returns (orders newest first, looked up by id)."""
    order_id = p_str(p, "orderId")
    link = p_str(p, "orderLinkId")
    symbol = p_str(p, "symbol")
    base = p_str(p, "baseCoin")
    settle = p_str(p, "settleCoin")
    if category == "spot" and settle:
        raise ApiError(10001, "params error: settleCoin is not supported for spot")
    order_filter = p_str(p, "orderFilter")
    mine = [o for o in reversed(ex.orders) if o.account == a.name and o.category == category]
    if order_id:
        return [o for o in mine if o.order_id == order_id], True
    if link:
        return [o for o in mine if o.order_link_id == link], True

    def keep(o: Order) -> bool:
        inst = ex.instruments[(o.category, o.symbol)]
        if symbol is not None and o.symbol != symbol:
            return False
        if base is not None and inst.base_coin != base:
            return False
        if settle is not None and inst.quote_coin != settle:
            return False
        if order_filter == "Order" and o.stop_order_type:
            return False
        return not (order_filter == "StopOrder" and not o.stop_order_type)

    if order_filter not in (None, "Order", "StopOrder"):
        return [], False
    return [o for o in mine if keep(o)], False


def open_orders(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    category = p_category(p)
    if category == "linear" and not any(p_str(p, k) for k in ("symbol", "baseCoin", "settleCoin")):
        raise ApiError(10001, "params error: symbol, baseCoin or settleCoin is required for linear")
    open_only = p_int(p, "openOnly", default=0, lo=0, hi=1)
    limit = p_int(p, "limit", default=20, lo=1, hi=50)
    assert limit is not None
    orders, by_id = _order_filters(ex, a, category, p)
    if not by_id:
        if open_only == 0:
            orders = [o for o in orders if o.status in OPEN_STATUSES]
        else:
            orders = [o for o in orders if o.status not in OPEN_STATUSES][:500]
    page, nxt = paginate(orders, limit, p_str(p, "cursor"))
    return {
        "category": category,
        "list": [order_dict(ex, o) for o in page],
        "nextPageCursor": nxt,
    }


def order_history(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    category = p_category(p)
    status = p_str(p, "orderStatus")
    limit = p_int(p, "limit", default=20, lo=1, hi=50)
    assert limit is not None
    lo, hi = time_window(p_int(p, "startTime", lo=0), p_int(p, "endTime", lo=0), ex.now())
    orders, by_id = _order_filters(ex, a, category, p)
    orders = [
        o
        for o in orders
        if (status is None or o.status == status) and (by_id or lo <= o.created_time <= hi)
    ]
    page, nxt = paginate(orders, limit, p_str(p, "cursor"))
    return {
        "category": category,
        "list": [order_dict(ex, o) for o in page],
        "nextPageCursor": nxt,
    }


def executions(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    category = p_category(p)
    order_id = p_str(p, "orderId")
    link = p_str(p, "orderLinkId")
    symbol = p_str(p, "symbol")
    base = p_str(p, "baseCoin")
    exec_type = p_str(p, "execType")
    limit = p_int(p, "limit", default=50, lo=1, hi=100)
    assert limit is not None
    lo, hi = time_window(p_int(p, "startTime", lo=0), p_int(p, "endTime", lo=0), ex.now())
    mine = [
        e
        for e in reversed(ex.listed_executions(a.name))
        if e.category == category and lo <= e.exec_time <= hi
    ]
    if order_id:
        mine = [e for e in mine if e.order_id == order_id]
    elif link:
        mine = [e for e in mine if e.order_link_id == link]
    else:
        mine = [
            e
            for e in mine
            if (symbol is None or e.symbol == symbol)
            and (base is None or ex.instruments[(category, e.symbol)].base_coin == base)
            and (exec_type is None or e.exec_type == exec_type)
        ]
    page, nxt = paginate(mine, limit, p_str(p, "cursor"))
    return {
        "category": category,
        "list": [execution_dict(e) for e in page],
        "nextPageCursor": nxt,
    }


def positions(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    category = p_category(p, ("linear",))
    symbol = p_str(p, "symbol")
    settle = p_str(p, "settleCoin")
    limit = p_int(p, "limit", default=20, lo=1, hi=200)
    assert limit is not None
    if symbol is not None:
        ex.instrument(category, symbol)
        items = [ex.position(a, symbol)]
    elif settle is not None:
        items = [
            pos
            for sym, pos in sorted(a.positions.items())
            if pos.size > 0 and ex.instruments[("linear", sym)].quote_coin == settle
        ]
    else:
        raise ApiError(10001, "params error: symbol or settleCoin is required")
    start = 0
    cursor = p_str(p, "cursor")
    if cursor:
        start = decode_cursor(cursor)
    page = items[start : start + limit]
    nxt = encode_cursor(start + limit) if start + limit < len(items) else ""
    return {
        "category": category,
        "list": [position_dict(ex, a, pos) for pos in page],
        "nextPageCursor": nxt,
    }


def trading_stop(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    category = p_category(p, ("linear",))
    symbol = p_str(p, "symbol", required=True)
    assert symbol is not None
    inst = ex.instrument(category, symbol)
    mode = p_str(p, "tpslMode", required=True, choices=("Full", "Partial"))
    if mode != "Full":
        raise ApiError(10001, "fake: only tpslMode=Full is modelled")
    if p_int(p, "positionIdx", required=True) != 0:
        raise ApiError(10001, "position idx not match position mode")
    for name in ("tpTriggerBy", "slTriggerBy"):
        if p_str(p, name) not in (None, "LastPrice"):
            raise ApiError(10001, f"fake: only {name}=LastPrice is modelled")
    if p.get("trailingStop") not in (None, "", "0"):
        raise ApiError(10001, "fake: trailing stops are not modelled")
    tp = p_dec(p, "takeProfit", allow_zero=True)
    sl = p_dec(p, "stopLoss", allow_zero=True)
    if tp is None and sl is None:
        raise ApiError(10001, "params error: takeProfit or stopLoss is required")
    ex.trading_stop(a, inst, tp, sl)
    return {}


def set_leverage(ex: Exchange, acct: Account | None, p: Params) -> dict:
    a = _account(acct)
    category = p_category(p, ("linear",))
    symbol = p_str(p, "symbol", required=True)
    assert symbol is not None
    inst = ex.instrument(category, symbol)
    buy = p_dec(p, "buyLeverage", required=True)
    sell = p_dec(p, "sellLeverage", required=True)
    assert buy is not None
    assert sell is not None
    ex.set_leverage(a, inst, buy, sell)
    return {}


@dataclass(frozen=True)
class Route:
    handler: Handler
    auth: bool
    ret_msg: str = "OK"


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/v5/market/time"): Route(market_time, auth=False),
    ("GET", "/v5/market/instruments-info"): Route(instruments_info, auth=False),
    ("GET", "/v5/market/tickers"): Route(tickers, auth=False),
    ("GET", "/v5/market/kline"): Route(kline, auth=False),
    ("GET", "/v5/account/wallet-balance"): Route(wallet_balance, auth=True),
    ("GET", "/v5/asset/transfer/query-account-coins-balance"): Route(
        coins_balance, auth=True, ret_msg="success"
    ),
    ("POST", "/v5/asset/transfer/universal-transfer"): Route(
        universal_transfer, auth=True, ret_msg="success"
    ),
    ("GET", "/v5/asset/transfer/query-universal-transfer-list"): Route(
        transfer_list, auth=True, ret_msg="success"
    ),
    ("GET", "/v5/user/query-sub-members"): Route(sub_members, auth=True, ret_msg=""),
    ("GET", "/v5/user/query-api"): Route(query_api, auth=True, ret_msg=""),
    ("POST", "/v5/order/create"): Route(create_order, auth=True),
    ("POST", "/v5/order/cancel"): Route(cancel_order, auth=True),
    ("GET", "/v5/order/realtime"): Route(open_orders, auth=True),
    ("GET", "/v5/order/history"): Route(order_history, auth=True),
    ("GET", "/v5/execution/list"): Route(executions, auth=True),
    ("GET", "/v5/position/list"): Route(positions, auth=True),
    ("POST", "/v5/position/trading-stop"): Route(trading_stop, auth=True),
    ("POST", "/v5/position/set-leverage"): Route(set_leverage, auth=True),
}
