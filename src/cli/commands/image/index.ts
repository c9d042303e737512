import type { Command } from "../../command.js";
import { imageBuildCommand } from "./build.js";
import { imageImportCommand } from "./import.js";
import { imageListCommand } from "./list.js";
import { imagePruneCommand } from "./prune.js";
import { imageRmCommand } from "./rm.js";
import { imageShowCommand } from "./show.js";
import { imageWarmCommand } from "./warm.js";

export const IMAGE_COMMANDS: readonly Command[] = [imageBuildCommand, imageListCommand, imageShowCommand, imageRmCommand, imagePruneCommand, imageImportCommand, imageWarmCommand];
