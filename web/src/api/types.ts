// Shapes of the CityWok API, named for the page. Nothing is written here by hand: every
// type comes from schema.d.ts, which scripts/gen_web_types.py generates (openapi-typescript)
// from the service's own OpenAPI document, itself derived from the answer model in
// src/citywok/result.py (docs/web.md, "One answer model").

import type { components } from "./schema";

type Schemas = components["schemas"];

export type Status = Schemas["Status"];
/** Which evidence decided a candidate. */
export type Evidence = Schemas["Evidence"];
/** A place in an episode where the clip fits, with its scene and links. */
export type Candidate = Schemas["CandidateOut"];
/** Why an answer is ambiguous, from the catalogue. */
export type SharedMaterial = Schemas["SharedOut"];
/** The answer (`POST /api/v1/identify`, `GET /api/v1/shares/{id}`, the SSE `result`). */
export type IdentifyResult = Schemas["IdentifyOut"];
/** GET /api/v1/me: the caller's tier and what is left of its quota. */
export type Me = Schemas["MeOut"];
export type ErrorBody = Schemas["ErrorBody"];
export type Stats = Schemas["StatsOut"];
export type EpisodeInfo = Schemas["EpisodeOut"];
export type EpisodePage = Schemas["EpisodePage"];
