"""API keys over HTTP (admin scope only): create, list, revoke; the same store as ``ragent keys``."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi import Path as PathParam

from app.api.auth import Principal
from app.api.deps import Caller, State
from app.api.problems import Problem
from app.api.schemas import KeyCreate, KeyCreated, KeyInfoOut, KeyList

KeyId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$", description="The key id.")]


def admin(caller: Caller) -> Principal:
    if not caller.admin:
        raise Problem(403, "managing API keys needs an admin key (one scoped to '*': "
                      "`ragent keys create --workspace '*'`)")
    return caller


Admin = Annotated[Principal, Depends(admin)]
router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", status_code=201, response_model=KeyCreated,
             summary="Create a key for some workspaces ('*' = admin); the key is returned once")
async def create_key(st: State, _: Admin, req: KeyCreate) -> KeyCreated:
    token = await asyncio.to_thread(st.keys.create, list(req.workspaces), req.name)
    key_id = token.split("_")[1]
    info = next(k for k in await asyncio.to_thread(st.keys.list) if k.key_id == key_id)
    return KeyCreated(key=token, **info.to_json())  # type: ignore[arg-type]


@router.get("", response_model=KeyList, summary="Every key: ids, scopes, names, revocation times (never the keys)")
async def list_keys(st: State, _: Admin) -> KeyList:
    return KeyList(keys=[KeyInfoOut(**k.to_json()) for k in await asyncio.to_thread(st.keys.list)])  # type: ignore[arg-type]


@router.delete("/{key_id}", status_code=204, summary="Revoke a key: it is rejected from the next request on")
async def revoke_key(st: State, _: Admin, key_id: KeyId) -> Response:
    if not await asyncio.to_thread(st.keys.revoke, key_id):
        raise Problem(404, f"no active key {key_id!r}; GET /v1/keys lists them")
    return Response(status_code=204)
